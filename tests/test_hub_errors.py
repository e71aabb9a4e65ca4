"""A flaky Hub (tests/helpers/fake_hub.py, on 127.0.0.1): HTTP errors other than 404 name the file and the
status, also for optional files; a silent server costs a bounded time; dropped connections and wrong sizes
cache nothing corrupt; a corrupt cached file names its path and force_download=True; HF_HUB_OFFLINE=1
loads a complete download. Each test takes seconds: timeouts are shrunk through huggingface_hub's settings."""

import time

import huggingface_hub
import huggingface_hub.constants
import pytest
import torch

import polyformer.hub
from helpers.fake_hub import FakeHub
from polyformer import (AutoTokenizer, DistilBertConfig, DistilBertModel, DistilBertTokenizer, GPTJConfig,
                        GPTJForCausalLM)
from polyformer.checkpoints import CheckpointError
from polyformer.hub import HubError
from test_atomic_saves import ROOT, TINY

REPO = "someone/tiny"


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A fake Hub serving a tiny DistilBERT with its tokenizer as REPO, HF_ENDPOINT pointed at it."""
    torch.manual_seed(0)
    folder = tmp_path / "repo"
    DistilBertModel(DistilBertConfig(**TINY)).save_pretrained(folder)
    DistilBertTokenizer(str(ROOT / "tests/fixtures/tokenizers/distilbert/vocab.txt"),
                        model_max_length=128).save_pretrained(folder)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_ETAG_TIMEOUT", 0.5)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)
    monkeypatch.setattr(polyformer.hub, "HUB_BACKOFF_S", 0.05)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with FakeHub() as server:
        server.add_folder(REPO, folder)
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        server.cache = str(tmp_path / "cache")
        server.folder = folder
        yield server


def test_a_good_hub_loads_and_optional_404s_are_absent(hub):
    model = DistilBertModel.from_pretrained(REPO, cache_dir=hub.cache)
    tok = AutoTokenizer.from_pretrained(REPO, cache_dir=hub.cache)
    assert model.config.dim == 32 and tok.model_max_length == 128
    assert hub.requests[("HEAD", "tokenizer.json")] >= 1  # asked for, 404: absent, not an error


def test_500_for_tokenizer_config_is_an_error_naming_file_and_status(hub):
    """Row 4: the model loaded from the repo; the tokenizer's optional file answers 500."""
    DistilBertModel.from_pretrained(REPO, cache_dir=hub.cache)
    hub.fail("tokenizer_config.json", status=500)
    with pytest.raises(HubError, match=r"tokenizer_config\.json.*HTTP 500"):
        AutoTokenizer.from_pretrained(REPO, cache_dir=hub.cache)
    with pytest.raises(HubError, match=r"tokenizer_config\.json.*HTTP 500"):
        DistilBertTokenizer.from_pretrained(REPO, cache_dir=hub.cache)
    assert hub.requests[("HEAD", "tokenizer_config.json")] == 2 * (1 + polyformer.hub.HUB_RETRIES)  # bounded retries


def test_403_is_not_retried_and_is_named(hub):
    hub.fail("special_tokens_map.json", status=403)
    with pytest.raises(HubError, match=r"special_tokens_map\.json.*HTTP 403"):
        DistilBertTokenizer.from_pretrained(REPO, cache_dir=hub.cache)
    assert hub.requests[("HEAD", "special_tokens_map.json")] == 1


def test_500_for_generation_config_and_weights_is_named(hub, tmp_path):
    """Row 5: not default generation settings, not "no weights found"."""
    torch.manual_seed(0)
    GPTJForCausalLM(GPTJConfig(vocab_size=64, n_embd=16, n_layer=1, n_head=2, rotary_dim=4,
                               n_positions=32)).save_pretrained(tmp_path / "gptj")
    hub.add_folder("someone/gptj", tmp_path / "gptj")
    hub.fail("generation_config.json", status=500)
    with pytest.raises(HubError, match=r"generation_config\.json.*HTTP 500"):
        GPTJForCausalLM.from_pretrained("someone/gptj", cache_dir=hub.cache)
    hub.heal()
    hub.fail("model.safetensors", status=503)
    with pytest.raises(HubError, match=r"model\.safetensors.*HTTP 503"):
        DistilBertModel.from_pretrained(REPO, cache_dir=hub.cache)


def test_a_silent_server_costs_a_bounded_time(hub):
    hub.fail("config.json", silent=True)
    start = time.monotonic()
    with pytest.raises(HubError, match=r"config\.json.*no answer within 0\.5 s"):
        DistilBertModel.from_pretrained(REPO, cache_dir=hub.cache)
    assert time.monotonic() - start < 10  # 3 tries of 0.5 s plus backoff; was 386 s


def test_a_down_server_falls_back_to_the_cached_copy(hub):
    DistilBertModel.from_pretrained(REPO, cache_dir=hub.cache)
    hub.fail("config.json", status=502)
    hub.fail("model.safetensors", status=502)
    assert DistilBertModel.from_pretrained(REPO, cache_dir=hub.cache).config.dim == 32


def test_a_dropped_connection_resumes(hub):
    hub.fail("model.safetensors", drop=1)
    model = DistilBertModel.from_pretrained(REPO, cache_dir=hub.cache)
    assert hub.requests[("GET", "model.safetensors")] == 2
    assert torch.equal(model.transformer.layer[0].ffn.lin1.weight,
                       DistilBertModel.from_pretrained(hub.folder).transformer.layer[0].ffn.lin1.weight)


@pytest.mark.parametrize("fault", [{"drop_all": True}, {"short": True}])
def test_dropped_connections_and_wrong_sizes_cache_nothing_corrupt(hub, fault):
    hub.fail("model.safetensors", **fault)
    with pytest.raises(HubError, match=r"model\.safetensors"):
        DistilBertModel.from_pretrained(REPO, cache_dir=hub.cache)
    cached = huggingface_hub.try_to_load_from_cache(REPO, "model.safetensors", cache_dir=hub.cache)
    assert not isinstance(cached, str)  # nothing cached under the file's name
    hub.heal()
    assert DistilBertModel.from_pretrained(REPO, cache_dir=hub.cache).config.dim == 32


def test_a_corrupt_cached_file_names_its_path_and_force_download(hub, monkeypatch):
    """Row 6: a correctly sized garbage model.safetensors, served then cached."""
    hub.fail("model.safetensors", garbage=True)
    with pytest.raises(CheckpointError, match=r"snapshots.*model\.safetensors.*force_download=True"):
        DistilBertModel.from_pretrained(REPO, cache_dir=hub.cache)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # offline, the cached garbage is named the same way
    with pytest.raises(CheckpointError, match=r"force_download=True"):
        DistilBertModel.from_pretrained(REPO, cache_dir=hub.cache)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    hub.heal()
    assert DistilBertModel.from_pretrained(REPO, cache_dir=hub.cache, force_download=True).config.dim == 32


def test_offline_loads_a_complete_download(hub, monkeypatch):
    DistilBertModel.from_pretrained(REPO, cache_dir=hub.cache)
    AutoTokenizer.from_pretrained(REPO, cache_dir=hub.cache)
    hub.fail("config.json", silent=True)  # would hang if asked
    before = sum(hub.requests.values())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert DistilBertModel.from_pretrained(REPO, cache_dir=hub.cache).config.dim == 32
    assert AutoTokenizer.from_pretrained(REPO, cache_dir=hub.cache).model_max_length == 128
    assert sum(hub.requests.values()) == before  # not one request


def test_a_pinned_commit_in_the_cache_needs_no_request(hub):
    from helpers.fake_hub import COMMIT

    DistilBertModel.from_pretrained(REPO, cache_dir=hub.cache, revision=COMMIT)
    for name in ("config.json", "model.safetensors"):
        hub.fail(name, status=500)
    assert DistilBertModel.from_pretrained(REPO, cache_dir=hub.cache, revision=COMMIT).config.dim == 32
