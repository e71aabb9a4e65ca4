"""`convert_bert_to_distilbert` on tiny synthetic BERT folders: the key map, the token-type fold, the
files it writes, and every way the input can be wrong (tests/test_parity_minilm.py checks real numbers)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from helpers.tolerance import assert_close
from polyformer.checkpoints import CheckpointError
from polyformer.models.distilbert.convert_bert import ConversionError, convert_bert_to_distilbert, parse_layers

C, H, V, P, T, L = 8, 16, 12, 10, 2, 3  # width, ffn width, vocab, positions, token types, layers
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "##s", "."]
BERT_MODULES = {  # BERT module -> (DistilBERT module, weight shape)
    "attention.self.query": ("attention.q_lin", (C, C)),
    "attention.self.key": ("attention.k_lin", (C, C)),
    "attention.self.value": ("attention.v_lin", (C, C)),
    "attention.output.dense": ("attention.out_lin", (C, C)),
    "attention.output.LayerNorm": ("sa_layer_norm", (C,)),
    "intermediate.dense": ("ffn.lin1", (H, C)),
    "output.dense": ("ffn.lin2", (C, H)),
    "output.LayerNorm": ("output_layer_norm", (C,)),
}


def bert_config(**overrides) -> dict:
    config = {"model_type": "bert", "architectures": ["BertModel"], "vocab_size": V, "hidden_size": C,
              "num_hidden_layers": L, "num_attention_heads": 2, "intermediate_size": H, "hidden_act": "gelu",
              "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "max_position_embeddings": P,
              "type_vocab_size": T, "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
              "position_embedding_type": "absolute"}
    return {**config, **overrides}


def bert_state(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    state = {"embeddings.word_embeddings.weight": (V, C), "embeddings.position_embeddings.weight": (P, C),
             "embeddings.token_type_embeddings.weight": (T, C), "embeddings.LayerNorm.weight": (C,),
             "embeddings.LayerNorm.bias": (C,), "pooler.dense.weight": (C, C), "pooler.dense.bias": (C,)}
    for i in range(L):
        for module, (_, shape) in BERT_MODULES.items():
            state[f"encoder.layer.{i}.{module}.weight"] = shape
            state[f"encoder.layer.{i}.{module}.bias"] = shape[:1]
    state = {name: torch.randn(shape, generator=g) for name, shape in state.items()}
    state["embeddings.position_ids"] = torch.arange(P)[None]
    return state


def write_bert(folder: Path, config: dict | None = None, state: dict | None = None, tokenizer: bool = True) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config or bert_config()))
    save_file(state or bert_state(), str(folder / "model.safetensors"), metadata={"format": "pt"})
    if tokenizer:
        (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
        (folder / "tokenizer_config.json").write_text(json.dumps(
            {"tokenizer_class": "BertTokenizer", "do_lower_case": False, "model_max_length": 128,
             "name_or_path": "somewhere/tiny-bert", "strip_accents": None}))
    return folder


@pytest.fixture
def src(tmp_path) -> Path:
    return write_bert(tmp_path / "bert")


def children(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_key_map_and_token_type_fold(src, tmp_path):
    dst = convert_bert_to_distilbert(src, tmp_path / "distil")
    bert, distil = bert_state(), load_file(str(dst / "model.safetensors"))
    expected_keys = {f"embeddings.{k}" for k in ("word_embeddings.weight", "position_embeddings.weight",
                                                 "LayerNorm.weight", "LayerNorm.bias")}
    for j in range(L):
        for module, _ in BERT_MODULES.values():
            expected_keys |= {f"transformer.layer.{j}.{module}.weight", f"transformer.layer.{j}.{module}.bias"}
    assert set(distil) == expected_keys
    assert torch.equal(distil["embeddings.word_embeddings.weight"], bert["embeddings.word_embeddings.weight"])
    folded = bert["embeddings.position_embeddings.weight"] + bert["embeddings.token_type_embeddings.weight"][0]
    assert torch.equal(distil["embeddings.position_embeddings.weight"], folded)
    for i in range(L):
        for module, (distil_module, _) in BERT_MODULES.items():
            for param in ("weight", "bias"):
                assert torch.equal(distil[f"transformer.layer.{i}.{distil_module}.{param}"],
                                   bert[f"encoder.layer.{i}.{module}.{param}"])


def test_embeddings_equal_berts_for_token_type_zero(src, tmp_path):
    distil = load_file(str(convert_bert_to_distilbert(src, tmp_path / "distil") / "model.safetensors"))
    bert = bert_state()
    ids = torch.tensor([2, 5, 6, 7, 3])
    ln = lambda x, p: torch.nn.functional.layer_norm(x, (C,), p["embeddings.LayerNorm.weight"],  # noqa: E731
                                                     p["embeddings.LayerNorm.bias"], eps=1e-12)
    bert_out = ln(bert["embeddings.word_embeddings.weight"][ids] + bert["embeddings.token_type_embeddings.weight"][0]
                  + bert["embeddings.position_embeddings.weight"][:5], bert)
    distil_out = ln(distil["embeddings.word_embeddings.weight"][ids]
                    + distil["embeddings.position_embeddings.weight"][:5], distil)
    assert_close(distil_out, bert_out, atol=1e-6, rtol=1e-6)  # the same sum, added in another order


def test_chosen_layers_in_order(src, tmp_path):
    dst = convert_bert_to_distilbert(src, tmp_path / "distil", [2, 0])
    distil, bert = load_file(str(dst / "model.safetensors")), bert_state()
    assert json.loads((dst / "config.json").read_text())["n_layers"] == 2
    assert not any(name.startswith("transformer.layer.2.") for name in distil)
    assert torch.equal(distil["transformer.layer.0.ffn.lin1.weight"], bert["encoder.layer.2.intermediate.dense.weight"])
    assert torch.equal(distil["transformer.layer.1.attention.q_lin.bias"], bert["encoder.layer.0.attention.self.query.bias"])


def test_config_json(src, tmp_path):
    config = json.loads((convert_bert_to_distilbert(src, tmp_path / "distil") / "config.json").read_text())
    assert config == {
        "model_type": "distilbert", "architectures": ["DistilBertModel"], "activation": "gelu",
        "attention_dropout": 0.1, "dim": C, "dropout": 0.1, "hidden_dim": H, "initializer_range": 0.02,
        "max_position_embeddings": P, "n_heads": 2, "n_layers": L, "pad_token_id": 0, "qa_dropout": 0.1,
        "seq_classif_dropout": 0.2, "sinusoidal_pos_embds": False, "vocab_size": V}


def test_tokenizer_files(src, tmp_path):
    dst = convert_bert_to_distilbert(src, tmp_path / "distil")
    assert (dst / "vocab.txt").read_text() == (src / "vocab.txt").read_text()
    assert json.loads((dst / "tokenizer_config.json").read_text()) == {
        "tokenizer_class": "DistilBertTokenizer", "do_lower_case": False, "model_max_length": 128,
        "strip_accents": None}
    assert json.loads((dst / "special_tokens_map.json").read_text()) == {
        "unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]", "mask_token": "[MASK]"}


def test_vocab_txt_written_from_tokenizer_json(tmp_path):
    src = write_bert(tmp_path / "bert", tokenizer=False)
    fast = {"version": "1.0", "normalizer": {"type": "BertNormalizer", "lowercase": True},
            "model": {"type": "WordPiece", "vocab": {token: i for i, token in reversed(list(enumerate(VOCAB)))}}}
    (src / "tokenizer.json").write_text(json.dumps(fast))
    dst = convert_bert_to_distilbert(src, tmp_path / "distil")
    assert (dst / "vocab.txt").read_text().splitlines() == VOCAB
    assert json.loads((dst / "tokenizer.json").read_text()) == fast
    tokenizer_config = json.loads((dst / "tokenizer_config.json").read_text())
    assert tokenizer_config == {"tokenizer_class": "DistilBertTokenizer", "do_lower_case": True, "model_max_length": P}


def test_no_tokenizer_is_a_warning(tmp_path, caplog):
    src = write_bert(tmp_path / "bert", tokenizer=False)
    with caplog.at_level(logging.WARNING):
        dst = convert_bert_to_distilbert(src, tmp_path / "distil")
    assert children(dst) == ["config.json", "model.safetensors"]
    assert "without a tokenizer" in caplog.text


@pytest.mark.parametrize("zipfile_format", [True, False], ids=["zip", "legacy"])
def test_prefixed_bin_with_heads_and_tf_layernorm_names(tmp_path, zipfile_format):
    state = bert_state()
    prefixed = {}
    for name, tensor in state.items():
        if name.startswith("encoder.layer.1.") and ".LayerNorm." in name:
            name = name.replace(".weight", ".gamma").replace(".bias", ".beta")
        prefixed[f"bert.{name}"] = tensor
    prefixed["cls.predictions.bias"] = torch.zeros(V)
    prefixed["cls.predictions.transform.dense.weight"] = torch.zeros(C, C)
    src = tmp_path / "bert"
    src.mkdir()
    (src / "config.json").write_text(json.dumps(bert_config(architectures=["BertForPreTraining"])))
    torch.save(prefixed, src / "pytorch_model.bin", _use_new_zipfile_serialization=zipfile_format)
    distil = load_file(str(convert_bert_to_distilbert(src, tmp_path / "distil") / "model.safetensors"))
    assert torch.equal(distil["transformer.layer.1.sa_layer_norm.weight"],
                       state["encoder.layer.1.attention.output.LayerNorm.weight"])
    assert torch.equal(distil["transformer.layer.1.output_layer_norm.bias"], state["encoder.layer.1.output.LayerNorm.bias"])
    assert not any("cls" in name or "pooler" in name for name in distil)


def test_sharded_safetensors(tmp_path):
    state = bert_state()
    src = write_bert(tmp_path / "bert", state={"embeddings.position_ids": torch.arange(P)[None]})
    (src / "model.safetensors").unlink()
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for file, keys in shards.items():
        save_file({k: state[k] for k in keys}, str(src / file), metadata={"format": "pt"})
    (src / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: file for file, keys in shards.items() for k in keys}}))
    distil = load_file(str(convert_bert_to_distilbert(src, tmp_path / "distil") / "model.safetensors"))
    assert torch.equal(distil["transformer.layer.2.ffn.lin2.weight"], state["encoder.layer.2.output.dense.weight"])


def test_overwrite_replaces_and_default_refuses(src, tmp_path):
    dst = tmp_path / "distil"
    dst.mkdir()
    (dst / "old.txt").write_text("old")
    with pytest.raises(ConversionError, match="already exists"):
        convert_bert_to_distilbert(src, dst)
    convert_bert_to_distilbert(src, dst, overwrite=True)
    assert "old.txt" not in children(dst) and "model.safetensors" in children(dst)
    assert children(tmp_path) == ["bert", "distil"]


@pytest.mark.parametrize("overrides, message", [
    ({"model_type": "roberta"}, "not a BERT checkpoint: config.json has model_type 'roberta'"),
    ({"model_type": None}, "not a BERT checkpoint"),
    ({"position_embedding_type": "relative_key"}, "absolute position embeddings only"),
    ({"hidden_act": "gelu_fast"}, "hidden_act 'gelu_fast' cannot be converted"),
    ({"hidden_act": {"type": "custom"}}, "cannot be converted"),
    ({"is_decoder": True, "add_cross_attention": True}, "without cross-attention"),
    ({"layer_norm_eps": 1e-5}, "eps=1e-12"),
    ({"hidden_size": 9}, "not a multiple of num_attention_heads"),
    ({"intermediate_size": 32}, "has shape (16, 8), expected (32, 8)"),
    ({"vocab_size": 99}, "embeddings.word_embeddings.weight has shape (12, 8), expected (99, 8)"),
])
def test_unconvertible_configs(tmp_path, overrides, message):
    src = write_bert(tmp_path / "bert", bert_config(**overrides))
    with pytest.raises(ConversionError) as error:
        convert_bert_to_distilbert(src, tmp_path / "distil")
    assert message in str(error.value)
    assert children(tmp_path) == ["bert"]  # nothing written, no temp folder left


def test_swish_maps_to_silu(tmp_path):
    src = write_bert(tmp_path / "bert", bert_config(hidden_act="swish"))
    assert json.loads((convert_bert_to_distilbert(src, tmp_path / "d") / "config.json").read_text())["activation"] == "silu"


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.pop("encoder.layer.1.attention.self.key.bias"), "lacks 1 tensors: encoder.layer.1.attention.self.key.bias"),
    (lambda s: s.update({"encoder.layer.0.crossattention.self.query.weight": torch.zeros(C, C)}),
     "no DistilBERT counterpart: encoder.layer.0.crossattention.self.query.weight"),
    (lambda s: s.update({"embeddings.token_type_embeddings.weight": torch.zeros(T, C + 1)}), "expected (T, 8)"),
])
def test_bad_tensors(tmp_path, edit, message):
    state = bert_state()
    edit(state)
    src = write_bert(tmp_path / "bert", state=state)
    with pytest.raises(ConversionError) as error:
        convert_bert_to_distilbert(src, tmp_path / "distil")
    assert message in str(error.value)
    assert children(tmp_path) == ["bert"]


def test_failure_after_writing_weights_leaves_nothing(tmp_path):
    src = write_bert(tmp_path / "bert", tokenizer=False)
    (src / "tokenizer.json").write_text(json.dumps({"model": {"type": "BPE", "vocab": {}}}))
    with pytest.raises(ConversionError, match="needs WordPiece"):
        convert_bert_to_distilbert(src, tmp_path / "out" / "distil")
    assert children(tmp_path / "out") == []


@pytest.mark.parametrize("layers, message", [
    ([0, 3], r"layers \[3\] out of range: the BERT checkpoint has layers 0..2"),
    ([-1], "out of range"),
    ([1, 1], "name a layer twice"),
    ([], "at least one layer"),
])
def test_bad_layers(src, tmp_path, layers, message):
    with pytest.raises(ConversionError, match=message):
        convert_bert_to_distilbert(src, tmp_path / "distil", layers)
    assert children(tmp_path) == ["bert"]


def test_parse_layers():
    assert parse_layers("0,2,4") == [0, 2, 4]
    assert parse_layers(" 1, 3 ,") == [1, 3]
    with pytest.raises(ConversionError, match="comma-separated"):
        parse_layers("0-3")


def test_missing_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="BERT checkpoint folder not found"):
        convert_bert_to_distilbert(tmp_path / "nowhere", tmp_path / "distil")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="BERT config not found"):
        convert_bert_to_distilbert(tmp_path / "empty", tmp_path / "distil")
    (tmp_path / "empty" / "config.json").write_text(json.dumps(bert_config()))
    with pytest.raises(FileNotFoundError, match="no weights found in"):
        convert_bert_to_distilbert(tmp_path / "empty", tmp_path / "distil")
    (tmp_path / "empty" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        convert_bert_to_distilbert(tmp_path / "empty", tmp_path / "distil")
    assert children(tmp_path) == ["empty"]


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_bin_is_loaded_with_weights_only(tmp_path, capsys):
    src = tmp_path / "bert"
    src.mkdir()
    (src / "config.json").write_text(json.dumps(bert_config()))
    torch.save({**bert_state(), "evil": _Payload()}, src / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="weights_only"):
        convert_bert_to_distilbert(src, tmp_path / "distil")
    assert "must never run" not in capsys.readouterr().out
    assert children(tmp_path) == ["bert"]
