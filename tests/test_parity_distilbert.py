"""DistilBERT (PyTorch) against transformers 4.37.2 fixtures in tests/fixtures/distilbert/.

Regenerate the fixtures with ``make fixtures`` (this family alone: ``.refvenv/bin/python scripts/fixtures/make_distilbert_fixtures.py``).
"""

import pytest

from helpers.parity import check_case, check_checkpoint, check_training, checkpoints, load_cases, params, training_cases
from polyformer import (
    DistilBertForMaskedLM,
    DistilBertForMultipleChoice,
    DistilBertForQuestionAnswering,
    DistilBertForSequenceClassification,
    DistilBertForTokenClassification,
    DistilBertModel,
)

MODELS = {
    cls.__name__: cls
    for cls in (
        DistilBertModel,
        DistilBertForMaskedLM,
        DistilBertForSequenceClassification,
        DistilBertForMultipleChoice,
        DistilBertForTokenClassification,
        DistilBertForQuestionAnswering,
    )
}
CASES = load_cases("distilbert")
HEADS = {name for name in MODELS if name != "DistilBertModel"}


def test_fixtures_cover_every_class():
    assert {c.model_class for c in CASES} == set(MODELS)
    assert {c.model_class for c in training_cases(CASES)} == HEADS


@pytest.mark.parametrize("case", params(CASES))
def test_matches_reference(case):
    """Outputs, losses, hidden states, attentions and tuple layout equal 4.37.2's to 1e-5."""
    check_case(MODELS[case.model_class], case)


@pytest.mark.parametrize("case", params(checkpoints(CASES)))
def test_checkpoint_layout(case, tmp_path):
    """Same state-dict keys, tied and frozen weights; save_pretrained round-trips."""
    check_checkpoint(MODELS[case.model_class], case, tmp_path)


@pytest.mark.parametrize("case", params(training_cases(CASES)))
def test_training_step(case):
    """Every head trains: finite loss and gradients, and an optimizer step moves the weights."""
    check_training(MODELS[case.model_class], case)
