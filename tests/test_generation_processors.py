"""Logits processors and warpers against transformers 4.37.2, one class at a time (fixed ids and scores,
recorded by scripts/fixtures/make_generation_fixtures.py), plus their argument checks and their
vectorised n-gram / bad-word logic against a plain Python version on random inputs."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import polyformer
from helpers.generation_models import reference_cases
from helpers.generation_toy import kwargs_from_json
from helpers.tolerance import assert_close
from polyformer.generation.processors import LogitsProcessorList

FIXTURE = reference_cases()
META = FIXTURE["meta"]["processors"]
TENSORS = {name: FIXTURE["tensors"][key] for name, key in META["inputs"].items()}


def _build(cls_name: str, kwargs: dict):
    return getattr(polyformer, cls_name)(**kwargs_from_json(kwargs, TENSORS))


@pytest.mark.parametrize("name", sorted(META["cases"]))
def test_processor_matches_reference(name):
    case = META["cases"][name]
    scores = TENSORS["scores"].clone()
    if case["class"] != "InfNanRemoveLogitsProcessor":
        scores = torch.nan_to_num(scores, nan=0.0, posinf=9.0)
    got = _build(case["class"], case["kwargs"])(TENSORS[case["ids"]], scores)
    assert_close(got, FIXTURE["tensors"][case["output"]], atol=1e-6, rtol=1e-6)  # a few elementwise operations


def _banned_by_python(ids, n):
    """The reference's rule, written plainly: tokens that would repeat an n-gram of the row."""
    banned = []
    for row in ids.tolist():
        if len(row) + 1 < n:
            banned.append(set())
            continue
        tail = tuple(row[len(row) - n + 1:]) if n > 1 else ()
        banned.append({row[i + n - 1] for i in range(len(row) - n + 1) if tuple(row[i:i + n - 1]) == tail})
    return banned


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 12), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_no_repeat_ngram_bans_exactly_the_repeats(batch, length, n, seed):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 4, (batch, length), generator=generator)
    scores = torch.zeros(batch, 6)
    out = polyformer.NoRepeatNGramLogitsProcessor(n)(ids, scores)
    for row, banned in zip(out, _banned_by_python(ids, n)):
        assert {i for i, v in enumerate(row.tolist()) if v == -math.inf} == banned


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 4), min_size=1, max_size=3), min_size=1, max_size=5),
       st.integers(1, 6), st.integers(0, 2**31 - 1))
def test_bad_words_ban_exactly_the_completions(bad_words, length, seed):
    ids = torch.randint(0, 5, (3, length), generator=torch.Generator().manual_seed(seed))
    out = polyformer.NoBadWordsLogitsProcessor(bad_words, eos_token_id=None)(ids, torch.zeros(3, 5))
    for row_ids, row in zip(ids.tolist(), out):
        expected = {w[-1] for w in bad_words if len(w) <= length and (len(w) == 1 or row_ids[-(len(w) - 1):] == w[:-1])}
        assert {i for i, v in enumerate(row.tolist()) if v == -math.inf} == expected


def test_bad_word_equal_to_eos_is_ignored():
    out = polyformer.NoBadWordsLogitsProcessor([[2], [3]], eos_token_id=[2, 7])(torch.tensor([[1]]), torch.zeros(1, 5))
    assert out[0].tolist() == [0, 0, 0, -math.inf, 0]


@pytest.mark.parametrize("make", [
    lambda: polyformer.TemperatureLogitsWarper(0.0),
    lambda: polyformer.TemperatureLogitsWarper(-1.0),
    lambda: polyformer.TopPLogitsWarper(0.0),
    lambda: polyformer.TopPLogitsWarper(1.5),
    lambda: polyformer.TopKLogitsWarper(0),
    lambda: polyformer.TopKLogitsWarper(3, min_tokens_to_keep=0),
    lambda: polyformer.TypicalLogitsWarper(1.0),
    lambda: polyformer.EpsilonLogitsWarper(1.0),
    lambda: polyformer.EtaLogitsWarper(0.0),
    lambda: polyformer.RepetitionPenaltyLogitsProcessor(0.0),
    lambda: polyformer.NoRepeatNGramLogitsProcessor(0),
    lambda: polyformer.MinLengthLogitsProcessor(-1, 2),
    lambda: polyformer.MinNewTokensLengthLogitsProcessor(3, -2, 2),
    lambda: polyformer.NoBadWordsLogitsProcessor([], 2),
    lambda: polyformer.NoBadWordsLogitsProcessor([[1, -3]], 2),
    lambda: polyformer.SequenceBiasLogitsProcessor({(1,): 1}),
    lambda: polyformer.SequenceBiasLogitsProcessor({}),
])
def test_bad_arguments_raise_value_error(make):
    with pytest.raises(ValueError):
        make()


def test_sequence_bias_token_outside_vocab():
    processor = polyformer.SequenceBiasLogitsProcessor({(9,): 1.0})
    with pytest.raises(ValueError, match="vocabulary size is 5"):
        processor(torch.tensor([[1]]), torch.zeros(1, 5))


def test_processor_list_passes_extra_arguments_to_processors_that_take_them():
    class Scale(polyformer.LogitsProcessor):
        def __call__(self, input_ids, scores, factor):
            return scores * factor

    processors = LogitsProcessorList([Scale(), lambda ids, scores: scores + 1])
    assert processors(torch.zeros(1, 1, dtype=torch.long), torch.ones(1, 3), factor=2.0).tolist() == [[3.0, 3.0, 3.0]]
    with pytest.raises(ValueError, match="factor"):
        processors(torch.zeros(1, 1, dtype=torch.long), torch.ones(1, 3))


def test_abstract_bases_raise():
    with pytest.raises(NotImplementedError):
        polyformer.LogitsProcessor()(torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 2))
    with pytest.raises(NotImplementedError):
        polyformer.StoppingCriteria()(torch.zeros(1, 1, dtype=torch.long), None)
