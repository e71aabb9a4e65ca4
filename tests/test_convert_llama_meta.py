"""`polyformer convert llama-meta` against tiny Meta-layout checkpoints in tests/fixtures/llama_meta/.

Regenerate with ``.refvenv/bin/python scripts/fixtures/make_llama_meta_fixtures.py``: each case is a tiny random
HF Llama written in Meta's layout (params.json, consolidated.NN.pth, tokenizer.model), with the original's
logits and what transformers 4.37.2's converter writes for the same folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers.parity import FIXTURES
from helpers.tolerance import assert_close
from polyformer import AutoTokenizer, CodeLlamaTokenizerFast, LlamaForCausalLM, LlamaTokenizerFast
from polyformer.cli import main
from polyformer.models.distilbert.convert_bert import ConversionError
from polyformer.models.llama.convert_meta import convert_llama_meta, permute, unpermute

ROOT = FIXTURES / "llama_meta"
CASES = sorted(p.name for p in ROOT.iterdir() if (p / "case.json").is_file())


def _case(name: str) -> dict:
    return json.loads((ROOT / name / "case.json").read_text())


@pytest.mark.parametrize("name", CASES)
def test_converted_folder_gives_the_originals_logits(name, tmp_path):
    """CLI, float32: the converted model's logits are the original HF model's; config.json is the one 4.37.2's
    converter writes (but for the dtype asked for); the tokenizer files load as the right class."""
    case = _case(name)
    out = tmp_path / "hf"
    assert main(["-q", "convert", "llama-meta", str(ROOT / name / "meta"), str(out), "--model-size",
                 case["model_size"], "--dtype", "float32"]) == 0
    io = load_file(str(ROOT / name / "io.safetensors"))
    model = LlamaForCausalLM.from_pretrained(str(out)).eval()
    with torch.no_grad():
        logits = model(io["input_ids"]).logits
    assert_close(logits, io["logits"], name=f"{name} logits")

    reference = case["reference_conversion"]
    ours = json.loads((out / "config.json").read_text())
    expected = {**reference["config"], "torch_dtype": "float32"}
    for key in ("transformers_version",):
        ours.pop(key, None), expected.pop(key, None)
    assert ours == expected
    assert json.loads((out / "generation_config.json").read_text())["eos_token_id"] == reference["generation_config"]["eos_token_id"]
    assert sorted(p.name for p in out.iterdir()) == reference["files"]

    tokenizer = AutoTokenizer.from_pretrained(str(out))
    code_llama = case["params"].get("rope_theta", 10000.0) > 10000
    assert type(tokenizer) is (CodeLlamaTokenizerFast if code_llama else LlamaTokenizerFast)
    assert tokenizer("def f(x): return x").input_ids[0] == 1  # <s>


def test_default_dtype_is_bfloat16_as_the_reference(tmp_path):
    """bf16 Meta weights converted to bf16 (the default): lossless, so the logits are the original's."""
    out = convert_llama_meta(ROOT / "llama2_7b" / "meta", tmp_path / "hf", "7B", progress=False)
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"
    model = LlamaForCausalLM.from_pretrained(str(out), torch_dtype=torch.float32).eval()
    io = load_file(str(ROOT / "llama2_7b" / "io.safetensors"))
    with torch.no_grad():
        assert_close(model(io["input_ids"]).logits, io["logits"], name="logits")


def test_sharded_output(tmp_path):
    out = convert_llama_meta(ROOT / "llama2_13b" / "meta", tmp_path / "hf", "13B", dtype="float32",
                             max_shard_size="100KB", progress=False)
    assert (out / "model.safetensors.index.json").is_file()
    io = load_file(str(ROOT / "llama2_13b" / "io.safetensors"))
    with torch.no_grad():
        assert_close(LlamaForCausalLM.from_pretrained(str(out))(io["input_ids"]).logits, io["logits"], name="logits")


def test_permute_round_trip():
    w = torch.randn(24, 10)
    assert torch.equal(permute(unpermute(w, 3), 3), w)
    assert not torch.equal(permute(w, 3), w)


def test_wrong_model_size_for_the_shards(tmp_path):
    with pytest.raises(ConversionError, match=r"13B is released as 2 file\(s\)"):
        convert_llama_meta(ROOT / "llama2_7b" / "meta" / "7B", tmp_path / "a", "13B", progress=False)
    with pytest.raises(ConversionError, match="model_size must be one of"):
        convert_llama_meta(ROOT / "llama2_7b" / "meta", tmp_path / "b", "3B", progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_params_disagreeing_with_weights(tmp_path):
    meta = tmp_path / "meta"
    shutil.copytree(ROOT / "llama2_13b" / "meta", meta)
    params = json.loads((meta / "13B" / "params.json").read_text())
    (meta / "13B" / "params.json").write_text(json.dumps({**params, "ffn_dim_multiplier": 1.0}))
    with pytest.raises(ConversionError, match="MLP width"):
        convert_llama_meta(meta, tmp_path / "hf", "13B", progress=False)


def test_existing_output_and_missing_input(tmp_path, capsys):
    (tmp_path / "hf").mkdir()
    with pytest.raises(ConversionError, match="already exists"):
        convert_llama_meta(ROOT / "llama2_7b" / "meta", tmp_path / "hf", "7B", progress=False)
    assert main(["convert", "llama-meta", str(tmp_path / "nothing"), str(tmp_path / "x"), "--model-size", "7B"]) == 1
    assert "params.json not found" in capsys.readouterr().err
