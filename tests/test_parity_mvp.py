"""MVP (PyTorch) against transformers 4.37.2 fixtures in tests/fixtures/mvp/: every class, with and without
prompts; outputs, losses, hidden states, self- and cross-attentions, past_key_values (legacy tuples, and as
EncoderDecoderCache objects, dynamic and static), tuple layouts, checkpoints, one training step, lightweight tuning.

Regenerate the fixtures with ``make fixtures`` (this family alone: ``.refvenv/bin/python scripts/fixtures/make_mvp_fixtures.py``).
"""

import pytest
import torch

from helpers.parity import assert_same, check_case, check_checkpoint, check_training, load_cases, load_model, params
from polyformer import (EncoderDecoderCache, MvpForCausalLM, MvpForConditionalGeneration, MvpForQuestionAnswering,
                        MvpForSequenceClassification, MvpModel, StaticCache)
from polyformer.pt.cache import DynamicCache

MODELS = {cls.__name__: cls for cls in (MvpModel, MvpForConditionalGeneration, MvpForSequenceClassification,
                                        MvpForQuestionAnswering, MvpForCausalLM)}
CASES = load_cases("mvp")


def test_fixtures_cover_every_class_with_and_without_prompts():
    assert {c.model_class for c in CASES} == set(MODELS)
    prompted = {c.model_class for c in CASES if c.dir.name.endswith("prompt")}
    assert prompted == set(MODELS) - {"MvpForCausalLM"}  # the causal LM has no prompts (prompt_config case)


@pytest.mark.parametrize("case", params(CASES))
def test_matches_reference(case):
    check_case(MODELS[case.model_class], case)


@pytest.mark.parametrize("case", params(c for c in CASES if c.call == "decode_step"))
@pytest.mark.parametrize("kind", ["dynamic", "static"])
def test_cache_objects(case, kind):
    """The decode step with its past as an EncoderDecoderCache: the same outputs as with the legacy tuple, the
    cache object itself returned, holding the reference's past_key_values."""
    model = load_model(MODELS[case.model_class], case)
    inputs = case.inputs()
    past = inputs.pop("past_key_values")
    expected = case.expected()
    batch, heads, seen, head_dim = past[0][0].shape
    own = DynamicCache(len(past)) if kind == "dynamic" else StaticCache(len(past), batch, heads, head_dim, seen + 2)
    for i, layer in enumerate(past):
        own.update(i, layer[0], layer[1])
    cache = EncoderDecoderCache(own, [layer[2:] or None for layer in past])
    with torch.no_grad():
        out = model(**inputs, past_key_values=cache, **case.kwargs)
    assert out.past_key_values is cache and cache.seen == seen + 1
    for field, value in expected.items():
        got = cache.to_legacy() if field == "past_key_values" else getattr(out, field)
        assert_same(got, value, name=f"{case} ({kind}): {field}")


@pytest.mark.parametrize("case", params(c for c in CASES if c.call in ("padded", "labels", "positions", "regression")))
def test_checkpoint(case, tmp_path):
    check_checkpoint(MODELS[case.model_class], case, tmp_path)


@pytest.mark.parametrize("case", params(c for c in CASES if c.call in ("labels", "positions", "regression", "cross")
                                        and not (c.call == "labels" and c.model_class == "MvpForCausalLM")))
def test_training_step(case):
    """(The causal LM trains on the call with encoder states, which reaches its cross-attention weights.)"""
    check_training(MODELS[case.model_class], case)


@pytest.mark.parametrize("case", params(c for c in CASES if c.call in ("padded", "labels", "positions", "regression")))
def test_lightweight_tuning_like_the_reference(case):
    model = load_model(MODELS[case.model_class], case)
    expected = case.facts["lightweight_tuning"]
    if "raises" in expected:
        with pytest.raises((ValueError, AttributeError), match="prompt"):
            model.set_lightweight_tuning()
        return
    model.set_lightweight_tuning()
    assert [n for n, p in model.named_parameters() if p.requires_grad] == expected["trainable_names"]
    assert model.num_parameters(only_trainable=True) == expected["trainable_parameters"]
