"""IDEFICS (PyTorch) against transformers 4.37.2 fixtures in tests/fixtures/idefics/: IdeficsModel and
IdeficsForVisionText2Text with and without the perceiver resampler, qk_layer_norms, vector alphas,
cross_layer_interval 1 and 2, additional vocabulary (tied and not), the freeze options, pixels / encoder /
perceiver image inputs, interpolate_pos_encoding, labels, decoding with past_key_values, errors.
generate() ids are checked by test_generation_decoders.py (fixtures idefics/generate*/).

Regenerate the fixtures with ``make fixtures`` (this family alone: ``.refvenv/bin/python scripts/fixtures/make_idefics_fixtures.py``).
"""

import json

import pytest

from helpers.parity import cache_cases, check_cache_forms, check_case, check_checkpoint, check_training, load_cases, params
from polyformer import IdeficsConfig, IdeficsForVisionText2Text, IdeficsModel

MODELS = {cls.__name__: cls for cls in (IdeficsModel, IdeficsForVisionText2Text)}
CASES = load_cases("idefics")


def test_fixtures_cover_every_class():
    assert {c.model_class for c in CASES} == set(MODELS)
    assert {c.dir.name for c in CASES} >= {"model", "model_resampler", "causal_lm", "causal_lm_resampler",
                                           "causal_lm_tied"}


@pytest.mark.parametrize("case", params(CASES))
def test_matches_reference(case):
    """Logits, losses, hidden states, image states, past_key_values, tuple layout and errors equal 4.37.2's
    (to 1e-5)."""
    check_case(MODELS[case.model_class], case)


@pytest.mark.parametrize("case", params(c for c in cache_cases(CASES) if c.call.startswith("decode")))
def test_cache_forms(case):
    check_cache_forms(MODELS[case.model_class], case)


@pytest.mark.parametrize("case", params(c for c in CASES if c.call in ("labels", "padded")))
def test_checkpoint_keys_ties_and_frozen_parameters(case, tmp_path):
    """State-dict keys, tied and frozen (freeze_text_layers / freeze_vision_layers / freeze_lm_head with
    their exceptions) parameters are the reference's; save_pretrained round-trips."""
    check_checkpoint(MODELS[case.model_class], case, tmp_path)


@pytest.mark.parametrize("case", params(c for c in CASES if c.call == "labels"))
def test_training_step_moves_only_trainable_parameters(case):
    if case.dir.name == "causal_lm_resampler":  # vision unfrozen: its post_layernorm (4.37's pooled CLS only)
        case = case.with_load_kwargs(freeze_vision_layers=True)  # never gets a gradient, in the reference too
    check_training(MODELS[case.model_class], case)


@pytest.mark.parametrize("case", params(c for c in CASES if c.call in ("labels", "padded")))
def test_config_json_is_the_references(case, tmp_path):
    """Saved config.json, nested vision_config / perceiver_config included, equals the reference's."""
    reference = json.loads((case.checkpoint / "config.json").read_text())
    config = IdeficsConfig.from_pretrained(case.checkpoint)
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    drop = ("transformers_version", "_name_or_path")
    assert {k: v for k, v in saved.items() if k not in drop} == {k: v for k, v in reference.items() if k not in drop}
