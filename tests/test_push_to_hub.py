"""push_to_hub against a loopback fake Hub (tests/helpers/fake_hub_upload.py): one commit with every file,
the arguments reaching the Hub, a failed upload (clear error, then a retry that succeeds), and the round trip:
push, then from_pretrained from that Hub id gives the same outputs."""

from __future__ import annotations

import json

import pytest
import torch

from helpers.fake_hub_upload import FakeHub
from helpers.parity import FIXTURES
from polyformer import (
    AutoImageProcessor,
    AutoProcessor,
    AutoTokenizer,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    GenerationConfig,
    LlamaConfig,
    LlamaForCausalLM,
)
from polyformer.push_to_hub import PushToHubError

PROCESSOR_FOLDER = FIXTURES / "auto_processor" / "groupvit"  # a GroupViT config, CLIP tokenizer and image processor


@pytest.fixture
def hub(monkeypatch, tmp_path):
    with FakeHub() as server:
        server.patch(monkeypatch, tmp_path / "hf-cache")
        yield server


def tiny_model():
    torch.manual_seed(0)
    config = DistilBertConfig(vocab_size=60, dim=16, n_heads=2, n_layers=2, hidden_dim=24, num_labels=3)
    return DistilBertForSequenceClassification(config).eval()


IDS = torch.tensor([[5, 9, 13, 2, 0], [7, 1, 44, 3, 8]])


def logits(model):
    with torch.no_grad():
        return model(IDS).logits


def test_model_round_trip_one_commit(hub):
    model = tiny_model()
    info = model.push_to_hub("tiny-distilbert", token="hf_test_token")
    assert len(hub.commits) == 1
    commit = hub.commits[0]
    assert commit["repo"] == "tester/tiny-distilbert" and commit["revision"] == "main"
    assert commit["message"] == "Upload DistilBertForSequenceClassification"  # 4.37: "Model" not in the name
    assert commit["files"] == ["config.json", "model.safetensors"]
    assert commit["authorization"] == "Bearer hf_test_token"
    assert info.oid == hub.repos["tester/tiny-distilbert"].heads["main"]

    loaded = DistilBertForSequenceClassification.from_pretrained("tester/tiny-distilbert")
    torch.testing.assert_close(logits(loaded), logits(model), rtol=0, atol=0)


def test_failed_upload_is_clear_and_a_retry_succeeds(hub):
    model = tiny_model()
    hub.fail_commits = 1
    with pytest.raises(PushToHubError, match=r"push_to_hub to 'tester/flaky' .* failed, nothing was committed") as err:
        model.push_to_hub("flaky")
    assert "500" in str(err.value) and "model.safetensors" in str(err.value)
    assert hub.commits == [] and hub.files("tester/flaky") == {}
    model.push_to_hub("flaky")
    assert len(hub.commits) == 1
    torch.testing.assert_close(logits(DistilBertForSequenceClassification.from_pretrained("tester/flaky")), logits(model))


def test_arguments_reach_the_hub(hub):
    model = tiny_model()
    model.push_to_hub("org/sharded", private=True, commit_message="first", commit_description="tiny",
                      safe_serialization=False, max_shard_size="40KB", revision="dev")
    assert hub.repos["org/sharded"].private
    commit = hub.commits[-1]
    assert (commit["revision"], commit["message"], commit["description"]) == ("dev", "first", "tiny")
    assert "pytorch_model.bin.index.json" in commit["files"] and len(commit["files"]) > 3  # shards, one commit
    assert hub.files("org/sharded") == {}  # main untouched
    loaded = DistilBertForSequenceClassification.from_pretrained("org/sharded", revision="dev")
    torch.testing.assert_close(logits(loaded), logits(model))

    info = model.push_to_hub("org/sharded", create_pr=True)
    assert info.pr_url is not None and hub.commits[-1]["create_pr"]
    assert hub.commits[-1]["revision"] == "refs/pr/1"


def test_decoder_with_generation_config(hub):
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=24, num_hidden_layers=1,
                                         num_attention_heads=2)).eval()
    model.push_to_hub("tester/llama")
    assert hub.commits[-1]["files"] == ["config.json", "generation_config.json", "model.safetensors"]
    loaded = LlamaForCausalLM.from_pretrained("tester/llama")
    torch.testing.assert_close(loaded.generate(IDS[:, :3], max_new_tokens=4), model.generate(IDS[:, :3], max_new_tokens=4))


def test_config_tokenizer_image_processor_processor(hub):
    config = DistilBertConfig(dim=48, n_heads=3)
    config.push_to_hub("tester/config")
    assert hub.commits[-1]["message"] == "Upload config" and hub.commits[-1]["files"] == ["config.json"]
    assert DistilBertConfig.from_pretrained("tester/config").dim == 48

    tokenizer = AutoTokenizer.from_pretrained(PROCESSOR_FOLDER)
    tokenizer.push_to_hub("tester/tokenizer")
    assert hub.commits[-1]["message"] == "Upload tokenizer"
    reloaded = AutoTokenizer.from_pretrained("tester/tokenizer")
    assert type(reloaded) is type(tokenizer)
    assert reloaded("a photo of two cats").input_ids == tokenizer("a photo of two cats").input_ids

    image_processor = AutoImageProcessor.from_pretrained(PROCESSOR_FOLDER)
    image_processor.push_to_hub("tester/images")
    assert hub.commits[-1]["message"] == "Upload processor"  # 4.37's rule: "Processor" in the class name
    assert hub.commits[-1]["files"] == ["preprocessor_config.json"]
    assert AutoImageProcessor.from_pretrained("tester/images").to_dict() == image_processor.to_dict()

    processor = AutoProcessor.from_pretrained(PROCESSOR_FOLDER)
    processor.push_to_hub("tester/processor")
    files = hub.commits[-1]["files"]
    assert "preprocessor_config.json" in files and "tokenizer.json" in files
    assert type(AutoProcessor.from_pretrained("tester/processor")) is type(processor)

    generation = GenerationConfig(max_new_tokens=7)
    generation.push_to_hub("tester/generation")
    assert hub.commits[-1]["files"] == ["generation_config.json"]
    assert GenerationConfig.from_pretrained("tester/generation").max_new_tokens == 7


def test_flax_model(hub):
    pytest.importorskip("flax")
    from polyformer import FlaxDistilBertForSequenceClassification

    model = tiny_model()
    model.push_to_hub("tester/pt")
    flax = FlaxDistilBertForSequenceClassification.from_pretrained("tester/pt", from_pt=True)
    flax.push_to_hub("tester/flax")
    assert hub.commits[-1]["files"] == ["config.json", "model.safetensors"]  # 4.37: safe_serialization=True
    back = FlaxDistilBertForSequenceClassification.from_pretrained("tester/flax")
    torch.testing.assert_close(torch.tensor(back(IDS.numpy()).logits.__array__()), logits(model), atol=1e-5, rtol=1e-5)


def test_tf_model(hub):
    pytest.importorskip("tensorflow")
    from polyformer import TFDistilBertForSequenceClassification

    model = tiny_model()
    model.push_to_hub("tester/pt")
    tf_model = TFDistilBertForSequenceClassification.from_pretrained("tester/pt", from_pt=True)
    tf_model.push_to_hub("tester/tf")
    assert hub.commits[-1]["files"] == ["config.json", "tf_model.h5"]  # as 4.37's TF push_to_hub
    back = TFDistilBertForSequenceClassification.from_pretrained("tester/tf")
    torch.testing.assert_close(torch.from_numpy(back(IDS.numpy()).logits.numpy()), logits(model), atol=1e-5, rtol=1e-5)


def test_bad_arguments(hub):
    model = tiny_model()
    with pytest.raises(ValueError, match="repo_id must be a Hub repo name"):
        model.push_to_hub("")
    with pytest.raises(NotImplementedError, match="use_temp_dir=False"):
        model.push_to_hub("tester/x", use_temp_dir=False)
    with pytest.raises(TypeError, match="unexpected keyword arguments"):
        model.push_to_hub("tester/x", organization="org")
    with pytest.raises(NotImplementedError, match=r"call push_to_hub\(repo_id\)"):
        AutoTokenizer.from_pretrained(PROCESSOR_FOLDER).save_pretrained("unused", push_to_hub=True)
    assert hub.commits == []


def test_unreachable_hub(monkeypatch, tmp_path):
    with FakeHub() as server:
        server.patch(monkeypatch, tmp_path)
    # the server is gone: the connection is refused
    with pytest.raises(PushToHubError, match="nothing was committed"):
        DistilBertConfig().push_to_hub("tester/gone")
