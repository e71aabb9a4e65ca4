"""GPT-J (PyTorch) against transformers 4.37.2 fixtures in tests/fixtures/gptj/.

Regenerate the fixtures with ``make fixtures`` (this family alone: ``.refvenv/bin/python scripts/fixtures/make_decoder_fixtures.py gptj``).
"""

import pytest

from helpers.parity import (cache_cases, check_cache_forms, check_case, check_checkpoint, check_training, checkpoints,
                    load_cases, params, training_cases)
from polyformer import (GPTJForCausalLM, GPTJForQuestionAnswering, GPTJForSequenceClassification, GPTJModel)

MODELS = {cls.__name__: cls for cls in (GPTJModel, GPTJForCausalLM, GPTJForSequenceClassification,
                                        GPTJForQuestionAnswering)}
CASES = load_cases("gptj")


def test_fixtures_cover_every_class():
    assert {c.model_class for c in CASES} == set(MODELS)
    assert {c.model_class for c in training_cases(CASES)} == set(MODELS) - {"GPTJModel"}


@pytest.mark.parametrize("case", params(CASES))
def test_matches_reference(case):
    """Logits, losses, hidden states, attentions, past_key_values and tuple layout equal 4.37.2's to 1e-5."""
    check_case(MODELS[case.model_class], case)


@pytest.mark.parametrize("case", params(CASES))
def test_eager_matches_reference(case):
    """The eager path (4.37's only one for GPT-J) gives the same numbers as polyformer's default SDPA."""
    if case.raises or case.load_kwargs:
        pytest.skip("covered by test_matches_reference")
    check_case(MODELS[case.model_class], case.with_load_kwargs(attn_implementation="eager"))


@pytest.mark.parametrize("case", params(cache_cases(CASES)))
def test_cache_forms(case):
    """past_key_values given as a DynamicCache or a StaticCache: same outputs, the cache updated in place."""
    check_cache_forms(MODELS[case.model_class], case)


@pytest.mark.parametrize("case", params(checkpoints(CASES)))
def test_checkpoint_and_training(case, tmp_path):
    """Reference state-dict keys, save_pretrained round trip; every head trains one step."""
    cls = MODELS[case.model_class]
    check_checkpoint(cls, case, tmp_path)
    if case.model_class != "GPTJModel":
        check_training(cls, next(c for c in training_cases(CASES) if c.dir == case.dir))
