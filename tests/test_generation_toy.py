"""generate() against transformers 4.37.2 on the same toy model (tests/helpers/generation_toy.py): every recorded
case — greedy, sampling under torch.manual_seed, beam search, beam sampling, with the length settings and
logits processors — gives exactly the reference's ids, and its scores to 1e-5; with the static cache,
with the model-returned tuple cache and without a cache."""

from __future__ import annotations

import pytest
import torch

from helpers.generation_models import check_case, polyformer_kwargs, reference_cases, toy_model

FIXTURE = reference_cases()
CASES = FIXTURE["meta"]["cases"]


def _run(name: str, *, static_cache: bool = True, **overrides):
    case = CASES[name]
    model = toy_model()
    model.static_cache = static_cache
    inputs = {k: FIXTURE["tensors"][key] for k, key in case["inputs"].items()}
    if case["seed"] is not None:
        torch.manual_seed(case["seed"])
    return model.generate(**inputs, **polyformer_kwargs(case["kwargs"]), **overrides)


def _check(name: str, result) -> None:
    check_case(FIXTURE, name, result)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_reference(name):
    if name == "greedy_max_length_below_prompt":  # the reference warns, then still makes one token
        with pytest.warns(UserWarning, match="Input length of input_ids is 6, but `max_length` is set to 4"):
            result = _run(name)
    else:
        result = _run(name)
    _check(name, result)


@pytest.mark.parametrize("name", sorted(n for n in CASES if n.startswith(("greedy_eos", "beam", "sample_top_p"))))
def test_matches_reference_with_tuple_cache(name):
    _check(name, _run(name, static_cache=False))


@pytest.mark.parametrize("name", ["greedy", "greedy_eos_scores", "sample_top_k", "beam", "beam_return_2"])
def test_matches_reference_without_cache(name):
    _check(name, _run(name, use_cache=False))
