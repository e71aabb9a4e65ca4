"""PreTrainedModel behaviour on DistilBERT: save/load, sharding, dtypes, loading info, heads, tying,
resizing, gradient checkpointing, attention backends, and bad input. Parity with the reference's
numbers is in test_parity_distilbert.py."""

import json
import os
import shutil

import pytest
import torch

from helpers.tolerance import ATOL, RTOL, assert_close
from polyformer import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    DistilBertConfig,
    DistilBertForMaskedLM,
    DistilBertForQuestionAnswering,
    DistilBertForSequenceClassification,
    DistilBertModel,
)
from polyformer.checkpoints import CheckpointError

TINY = dict(vocab_size=99, dim=32, n_heads=4, n_layers=2, hidden_dim=37, max_position_embeddings=64)


def tiny(cls=DistilBertModel, **kw):
    torch.manual_seed(0)
    return cls(DistilBertConfig(**{**TINY, **kw})).eval()


def batch(b=2, t=7):
    ids = torch.randint(1, 99, (b, t), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(b, t, dtype=torch.long)
    mask[1, 4:] = 0
    return ids, mask


def same_outputs(a, b, **tolerances):
    """The two models' outputs on one batch: bit for bit by default (the same weights through the same
    operations), or within the tolerances given."""
    ids, mask = batch()
    with torch.no_grad():
        x, y = a(input_ids=ids, attention_mask=mask)[0], b(input_ids=ids, attention_mask=mask)[0]
    assert_close(x, y, **{"atol": 0, "rtol": 0, **tolerances})


# --- save / load ----------------------------------------------------------------------------------
def test_save_load_round_trip_is_exact_and_in_eval_mode(tmp_path):
    model = tiny(DistilBertForMaskedLM)
    model.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architectures"] == ["DistilBertForMaskedLM"] and config["torch_dtype"] == "float32"
    loaded = DistilBertForMaskedLM.from_pretrained(tmp_path)
    assert not loaded.training
    same_outputs(model, loaded)
    assert loaded.vocab_projector.weight is loaded.distilbert.embeddings.word_embeddings.weight  # tied


def test_tied_weight_is_saved_once(tmp_path):
    from safetensors import safe_open

    tiny(DistilBertForMaskedLM).save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as f:
        keys = set(f.keys())
    assert "vocab_projector.weight" not in keys and "distilbert.embeddings.word_embeddings.weight" in keys
    assert "vocab_projector.bias" in keys


def test_sharded_save_and_load(tmp_path):
    model = tiny(DistilBertForSequenceClassification)
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and all(s.startswith("model-0000") for s in shards)
    assert set(index["weight_map"]) == set(model.state_dict())
    same_outputs(model, DistilBertForSequenceClassification.from_pretrained(tmp_path))
    # Saving again unsharded removes the old shards and index.
    model.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]


def test_a_missing_shard_is_named(tmp_path):
    tiny(DistilBertForSequenceClassification).save_pretrained(tmp_path, max_shard_size="20KB")
    shard = json.loads((tmp_path / "model.safetensors.index.json").read_text())["weight_map"]["pre_classifier.bias"]
    (tmp_path / shard).unlink()
    with pytest.raises(FileNotFoundError, match=f"model.safetensors.index.json names a shard that is missing: "
                                                f"{shard} not found"):
        DistilBertForSequenceClassification.from_pretrained(tmp_path)


def test_saved_files_get_the_mode_open_would_give(tmp_path):
    umask = os.umask(0o022)
    try:
        tiny().save_pretrained(tmp_path)
    finally:
        os.umask(umask)
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {"config.json": 0o644,
                                                                               "model.safetensors": 0o644}


def test_legacy_bin_is_loaded_with_weights_only(tmp_path):
    model = tiny()
    model.save_pretrained(tmp_path, safe_serialization=False)
    assert (tmp_path / "pytorch_model.bin").exists()
    same_outputs(model, DistilBertModel.from_pretrained(tmp_path))


def test_bin_from_torch_before_1_6_is_read_without_mmap(tmp_path):
    model = tiny()
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    same_outputs(model, DistilBertModel.from_pretrained(tmp_path))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    tiny().config.save_pretrained(tmp_path)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    torch.save({"x": Evil()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="weights_only"):
        DistilBertModel.from_pretrained(tmp_path)
    assert not (tmp_path / "pwned").exists()


def test_failed_save_leaves_no_partial_file(tmp_path, monkeypatch):
    import safetensors.torch

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        tiny().save_pretrained(tmp_path / "out", max_shard_size="20KB")
    assert os.listdir(tmp_path / "out") == []


def test_hub_id_from_the_offline_cache(tmp_path, monkeypatch):
    """A Hub id resolves through huggingface_hub's cache layout, with HF_HUB_OFFLINE=1."""
    model = tiny()
    snapshot = tmp_path / "cache" / "models--someone--tiny-distilbert" / "snapshots" / ("a" * 40)
    model.save_pretrained(snapshot)
    (tmp_path / "cache" / "models--someone--tiny-distilbert" / "refs").mkdir()
    (tmp_path / "cache" / "models--someone--tiny-distilbert" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = AutoModel.from_pretrained("someone/tiny-distilbert", cache_dir=tmp_path / "cache")
    same_outputs(model, loaded)
    loaded = DistilBertModel.from_pretrained("someone/tiny-distilbert", cache_dir=tmp_path / "cache",
                                             local_files_only=True, revision="main")
    same_outputs(model, loaded)
    with pytest.raises(FileNotFoundError, match="not a local folder"):
        DistilBertModel.from_pretrained("someone/other-model", cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, "bfloat16"])
def test_torch_dtype(tmp_path, dtype):
    tiny().save_pretrained(tmp_path)
    model = DistilBertModel.from_pretrained(tmp_path, torch_dtype=dtype)
    want = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    assert all(p.dtype == want for p in model.parameters())
    assert model(input_ids=batch()[0]).last_hidden_state.dtype == want


def test_torch_dtype_auto_uses_the_saved_dtype(tmp_path):
    tiny().to(torch.bfloat16).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["torch_dtype"] == "bfloat16"
    assert DistilBertModel.from_pretrained(tmp_path, torch_dtype="auto").dtype == torch.bfloat16
    assert DistilBertModel.from_pretrained(tmp_path).dtype == torch.float32
    with pytest.raises(ValueError, match="torch_dtype"):
        DistilBertModel.from_pretrained(tmp_path, torch_dtype=torch.int64)


# --- heads, loading info ---------------------------------------------------------------------------
def test_head_from_a_base_checkpoint_gets_a_fresh_initialised_head(tmp_path):
    base = tiny()
    base.save_pretrained(tmp_path)
    model, info = DistilBertForSequenceClassification.from_pretrained(
        tmp_path, num_labels=3, id2label={0: "a", 1: "b", 2: "c"}, output_loading_info=True)
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight",
                                            "pre_classifier.bias", "pre_classifier.weight"]
    assert info["unexpected_keys"] == [] and info["mismatched_keys"] == []
    assert model.classifier.out_features == 3 and model.config.id2label[2] == "c"
    assert torch.count_nonzero(model.classifier.bias) == 0
    assert 0.01 < model.classifier.weight.std().item() < 0.03  # normal(0, initializer_range=0.02)
    assert_close(model.distilbert.embeddings.word_embeddings.weight, base.embeddings.word_embeddings.weight,
                 atol=0, rtol=0)


def test_bare_model_from_a_head_checkpoint_reports_unexpected_keys(tmp_path):
    tiny(DistilBertForQuestionAnswering).save_pretrained(tmp_path)
    model, info = DistilBertModel.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == [] and info["unexpected_keys"] == ["qa_outputs.bias", "qa_outputs.weight"]


def test_mismatched_sizes(tmp_path):
    tiny(DistilBertForSequenceClassification).save_pretrained(tmp_path)
    with pytest.raises(RuntimeError, match="ignore_mismatched_sizes=True"):
        DistilBertForSequenceClassification.from_pretrained(tmp_path, num_labels=5)
    model, info = DistilBertForSequenceClassification.from_pretrained(
        tmp_path, num_labels=5, ignore_mismatched_sizes=True, output_loading_info=True)
    assert model.classifier.out_features == 5
    assert sorted(k for k, _, _ in info["mismatched_keys"]) == ["classifier.bias", "classifier.weight"]
    assert ("classifier.weight", (2, 32), (5, 32)) in info["mismatched_keys"]


@pytest.mark.parametrize("auto, cls_name", [
    (AutoModel, "DistilBertModel"), (AutoModelForMaskedLM, "DistilBertForMaskedLM"),
    (AutoModelForSequenceClassification, "DistilBertForSequenceClassification"),
    (AutoModelForMultipleChoice, "DistilBertForMultipleChoice"),
    (AutoModelForTokenClassification, "DistilBertForTokenClassification"),
    (AutoModelForQuestionAnswering, "DistilBertForQuestionAnswering"),
])
def test_auto_classes_resolve_by_model_type(tmp_path, auto, cls_name):
    tiny().save_pretrained(tmp_path)
    assert type(auto.from_pretrained(tmp_path)).__name__ == cls_name
    assert type(auto.from_config(DistilBertConfig(**TINY))).__name__ == cls_name


# --- embeddings, parameters, training helpers ------------------------------------------------------
def test_resize_token_embeddings_keeps_rows_and_ties():
    model = tiny(DistilBertForMaskedLM)
    old = model.get_input_embeddings().weight.detach().clone()
    old_bias = model.vocab_projector.bias.detach().clone()
    emb = model.resize_token_embeddings(120, pad_to_multiple_of=8)
    assert emb.num_embeddings == 120 and model.config.vocab_size == 120
    assert_close(emb.weight[:99], old, atol=0, rtol=0)
    assert model.vocab_projector.weight is emb.weight
    assert_close(model.vocab_projector.bias[:99], old_bias, atol=0, rtol=0)
    assert model(input_ids=torch.tensor([[119, 5]])).logits.shape == (1, 2, 120)
    model.resize_token_embeddings(50)
    assert model.vocab_projector.out_features == 50


def test_set_input_embeddings_and_num_parameters():
    model = tiny(DistilBertForSequenceClassification)
    n = model.num_parameters()
    assert n == sum(p.numel() for p in model.parameters())
    assert model.num_parameters(exclude_embeddings=True) == n - 99 * 32 - 64 * 32
    model.distilbert.embeddings.LayerNorm.weight.requires_grad_(False)
    assert model.num_parameters(only_trainable=True) == n - 32
    new = torch.nn.Embedding(99, 32)
    model.set_input_embeddings(new)
    assert model.get_input_embeddings() is new


def test_gradient_checkpointing_gives_the_same_gradients():
    ids, mask = batch()
    grads = []
    for enable in (False, True):
        model = tiny(DistilBertForSequenceClassification, dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.0)
        model.train()
        if enable:
            model.gradient_checkpointing_enable()
            assert model.is_gradient_checkpointing
        model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0, 1])).loss.backward()
        grads.append(model.distilbert.embeddings.word_embeddings.weight.grad)
    assert_close(grads[0], grads[1], atol=1e-6, rtol=1e-6)  # the forward recomputed: the same operations


def test_sinusoidal_positions_are_fixed():
    model = tiny(sinusoidal_pos_embds=True)
    weight = model.embeddings.position_embeddings.weight
    assert not weight.requires_grad
    assert_close(weight[1, :2], torch.stack([torch.sin(torch.tensor(1.0)), torch.cos(torch.tensor(1.0))]))


# --- attention backends ----------------------------------------------------------------------------
def test_eager_and_sdpa_agree(tmp_path):
    tiny(DistilBertForMaskedLM).save_pretrained(tmp_path)
    eager = DistilBertForMaskedLM.from_pretrained(tmp_path, attn_implementation="eager")
    sdpa = DistilBertForMaskedLM.from_pretrained(tmp_path)
    assert sdpa.config._attn_implementation == "sdpa" and eager.config._attn_implementation == "eager"
    same_outputs(eager, sdpa, atol=ATOL, rtol=RTOL)


def test_unknown_or_unavailable_attn_implementation(tmp_path):
    tiny().save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="attn_implementation must be one of"):
        DistilBertModel.from_pretrained(tmp_path, attn_implementation="fast")
    if not torch.cuda.is_available():
        with pytest.raises((ImportError, ValueError), match="flash"):
            DistilBertModel.from_pretrained(tmp_path, attn_implementation="flash_attention_2")


@pytest.mark.parametrize("family", ["Llama", "CodeGen", "GPTJ", "Mvp", "Canine", "GroupViT", "Idefics"])
def test_flash_attention_is_opt_in_per_family(family):
    """Only DistilBERT declares flash-attn; every other family refuses it by name, before any check of the
    package or the GPU."""
    import polyformer

    assert polyformer.DistilBertPreTrainedModel._supports_flash_attn_2
    cls = getattr(polyformer, f"{family}PreTrainedModel")
    assert not cls._supports_flash_attn_2
    config = getattr(polyformer, f"{family}Config")(attn_implementation="flash_attention_2")
    with pytest.raises(ValueError, match="does not support attn_implementation='flash_attention_2'"):
        cls(config)


# --- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, message", [
    (dict(input_ids=torch.ones(2, 5)), TypeError, "input_ids must hold integer token ids"),
    (dict(input_ids=torch.ones(5, dtype=torch.long)), ValueError, r"input_ids must have 2 dimensions"),
    (dict(input_ids=torch.full((1, 5), 99)), IndexError, r"\[0, 99\) \(vocab_size\)"),
    (dict(input_ids=torch.full((1, 5), -1)), IndexError, "input_ids must lie in"),
    (dict(input_ids=torch.ones(1, 65, dtype=torch.long)), ValueError, "exceeds max_position_embeddings=64"),
    (dict(input_ids=torch.ones(2, 5, dtype=torch.long), attention_mask=torch.ones(2, 6)), ValueError,
     r"attention_mask must have shape \(2, 5\)"),
    (dict(), ValueError, "specify either input_ids or inputs_embeds"),
    (dict(input_ids=torch.ones(1, 5, dtype=torch.long), inputs_embeds=torch.ones(1, 5, 32)), ValueError, "both"),
    (dict(inputs_embeds=torch.ones(1, 5, 31)), ValueError, "hidden size 32"),
    (dict(input_ids=[[1, 2]]), TypeError, "input_ids must be a torch.Tensor"),
])
def test_bad_input_is_named(kwargs, error, message):
    with pytest.raises(error, match=message):
        tiny()(**kwargs)


def test_bad_checkpoints(tmp_path):
    tiny().save_pretrained(tmp_path / "good")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        DistilBertModel.from_pretrained(tmp_path / "missing")
    for damage in ("truncate", "corrupt"):
        folder = tmp_path / damage
        shutil.copytree(tmp_path / "good", folder)
        data = (folder / "model.safetensors").read_bytes()
        data = data[: len(data) // 2] if damage == "truncate" else b"\xff" * 16 + data[16:]
        (folder / "model.safetensors").write_bytes(data)
        with pytest.raises(CheckpointError, match="not a readable safetensors file"):
            DistilBertModel.from_pretrained(folder)
    (tmp_path / "empty").mkdir()
    (tmp_path / "good" / "config.json").rename(tmp_path / "empty" / "config.json")
    with pytest.raises(FileNotFoundError, match="no weights found"):
        DistilBertModel.from_pretrained(tmp_path / "empty")
    (tmp_path / "llama").mkdir()
    (tmp_path / "llama" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match="model_type 'llama'"):
        DistilBertModel.from_pretrained(tmp_path / "llama")
    with pytest.raises(TypeError, match="unexpected keyword"):
        DistilBertModel.from_pretrained(tmp_path / "empty", not_an_option=1)


def test_qa_head_needs_two_labels():
    with pytest.raises(ValueError, match="num_labels should be 2"):
        tiny(DistilBertForQuestionAnswering, num_labels=3)


@pytest.mark.parametrize("cls_name", ["DistilBertForSequenceClassification", "DistilBertForMultipleChoice"])
def test_skipping_padding_gives_the_same_logits(cls_name):
    """These heads read position 0 only, so they run on real tokens alone unless hidden states or
    attentions (which show padded rows) are asked for; the logits must not change."""
    import polyformer

    model = tiny(getattr(polyformer, cls_name))
    ids, mask = batch(4, 9)
    mask[2, 3:] = 0
    left = torch.ones_like(mask)
    left[1, :2] = 0  # left padding: position 0 is padding, so nothing is skipped
    if cls_name.endswith("MultipleChoice"):
        ids, mask, left = ids.view(2, 2, 9), mask.view(2, 2, 9), left.view(2, 2, 9)
    with torch.no_grad():
        for m in (mask, left):
            fast = model(input_ids=ids, attention_mask=m).logits
            full = model(input_ids=ids, attention_mask=m, output_hidden_states=True).logits
            assert_close(fast, full, atol=1e-6, rtol=1e-6)  # the same rows, in a batch of another shape
