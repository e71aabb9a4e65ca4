"""GenerationConfig: generation_config.json read and written as transformers 4.37.2 does (files and dicts
recorded from the reference), defaults derived from model configs, validation, and the model's
`generation_config` (loaded with the weights, saved with them, made from the config otherwise)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import polyformer
from polyformer import GenerationConfig

FOLDER = Path(__file__).resolve().parent / "fixtures" / "generation" / "config"
EXPECTED = json.loads((FOLDER / "expected.json").read_text())


def test_reads_reference_file():
    config = GenerationConfig.from_pretrained(FOLDER)
    assert {**EXPECTED["to_dict"], "stop_strings": None} == config.to_dict()
    assert config.to_diff_dict() == EXPECTED["to_diff_dict"]
    assert config.custom_key == 1 and config.eos_token_id == [2, 5]


def test_writes_what_the_reference_writes(tmp_path):
    GenerationConfig(**EXPECTED["kwargs"]).save_pretrained(tmp_path)
    assert (tmp_path / "generation_config.json").read_text() == (FOLDER / "generation_config.json").read_text()
    assert GenerationConfig(**EXPECTED["kwargs"]).to_json_string() == EXPECTED["json"]


def test_defaults_match_reference():
    ours = GenerationConfig().to_dict()
    assert ours.pop("stop_strings") is None  # a transformers >= 4.39 attribute
    assert ours == EXPECTED["defaults"]


@pytest.mark.parametrize("family", sorted(EXPECTED["from_model_config"]))
def test_from_model_config_matches_reference(family):
    case = EXPECTED["from_model_config"][family]
    config_class = getattr(polyformer, {"llama": "LlamaConfig", "codegen": "CodeGenConfig", "gptj": "GPTJConfig"}[family])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = GenerationConfig.from_model_config(config_class(**case["model_config"])).to_dict()
    ours.pop("stop_strings")
    assert ours == case["generation_config"]


def test_kwargs_override_and_unused_kwargs(tmp_path):
    GenerationConfig(do_sample=True, top_k=3).save_pretrained(tmp_path, config_file_name="gen.json")
    config, unused = GenerationConfig.from_pretrained(tmp_path, "gen.json", top_k=1, return_unused_kwargs=True)
    assert config.top_k == 1 and config.do_sample is True and unused == {}
    assert config.update(top_p=0.5, not_an_attribute=2) == {"not_an_attribute": 2} and config.top_p == 0.5


def test_equality_hash_and_repr_ignore_metadata():
    a, b = GenerationConfig(max_new_tokens=3), GenerationConfig(max_new_tokens=3, transformers_version="4.0.0")
    assert a == b and hash(a) == hash(b) and a != GenerationConfig()
    assert repr(a) == 'GenerationConfig {\n  "max_new_tokens": 3\n}\n'


def test_validation():
    with pytest.warns(UserWarning, match="`temperature` is set to `0.5`"):
        GenerationConfig(temperature=0.5)
    with pytest.warns(UserWarning, match="`length_penalty` is set to `2.0`"):
        GenerationConfig(length_penalty=2.0)
    for bad in (dict(early_stopping="sometimes"), dict(num_beams=0), dict(num_beams=2.5), dict(max_new_tokens=-1),
                dict(num_return_sequences=2), dict(num_beams=2, num_return_sequences=3),
                dict(num_beams=4, num_beam_groups=3, diversity_penalty=1.0)):
        with pytest.raises(ValueError):
            GenerationConfig(**bad)
    config = GenerationConfig()
    config.streamer = object()
    with pytest.raises(ValueError, match="passed to `generate"):
        config.validate()


def test_save_refuses_an_invalid_config(tmp_path):
    with pytest.warns(UserWarning):
        config = GenerationConfig(top_p=0.5)
    with pytest.raises(ValueError, match="is invalid"):
        config.save_pretrained(tmp_path)
    assert not (tmp_path / "generation_config.json").exists()


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        GenerationConfig.from_pretrained(tmp_path)


def test_config_module_does_not_import_torch():
    code = "import sys; from polyformer import GenerationConfig; GenerationConfig(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# --- the model's generation_config ------------------------------------------------------------------
def _tiny_llama(**config_kwargs):
    config = polyformer.LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                    num_attention_heads=2, max_position_embeddings=32, **config_kwargs)
    return polyformer.LlamaForCausalLM(config).eval()


def test_model_built_from_config_has_derived_generation_config():
    model = _tiny_llama(bos_token_id=1, eos_token_id=2, pad_token_id=0)
    assert model.can_generate()
    assert (model.generation_config.bos_token_id, model.generation_config.eos_token_id) == (1, 2)
    assert model.generation_config._from_model_config is True


def test_generation_config_saved_and_loaded_with_the_model(tmp_path):
    model = _tiny_llama(eos_token_id=2)
    model.generation_config = GenerationConfig(max_new_tokens=7, do_sample=True, top_k=5, eos_token_id=[2, 3])
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "generation_config.json").read_text())
    assert saved == {"do_sample": True, "eos_token_id": [2, 3], "max_new_tokens": 7, "top_k": 5,
                     "transformers_version": "4.37.2"}
    loaded = polyformer.LlamaForCausalLM.from_pretrained(tmp_path)
    assert loaded.generation_config == model.generation_config


def test_model_without_generation_config_file_uses_its_config(tmp_path):
    model = _tiny_llama(eos_token_id=2)
    model.save_pretrained(tmp_path)
    (tmp_path / "generation_config.json").unlink()
    loaded = polyformer.LlamaForCausalLM.from_pretrained(tmp_path)
    assert loaded.generation_config.eos_token_id == 2 and loaded.generation_config._from_model_config


def test_legacy_generation_settings_in_model_config_are_used():
    """As in the reference: an untouched config-derived generation config follows later edits of the
    model config's generation keys (with a warning)."""
    model = _tiny_llama(eos_token_id=2, pad_token_id=0)
    model.generation_config  # made now, from the config
    model.config.max_length = 9
    import torch

    with pytest.warns(UserWarning, match="modified the pretrained model configuration"):
        out = model.generate(torch.tensor([[5, 6, 7]]))
    assert out.shape[1] <= 9 and model.generation_config.max_length == 9
