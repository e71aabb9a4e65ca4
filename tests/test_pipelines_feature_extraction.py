"""feature-extraction pipeline against transformers 4.37.2's on a tiny DistilBERT with the real BERT
vocabulary (tests/fixtures/pipelines/feature_extraction/): nested lists or tensors, truncation,
tokenize_kwargs, single, listed and batched texts (a batched row keeps its padded positions)."""

from __future__ import annotations

import pytest
import torch

from helpers.pipeline_cases import PIPELINE_FIXTURES, assert_matches, load_cases
from helpers.tolerance import assert_close
from polyformer import FeatureExtractionPipeline, pipeline

FOLDER = PIPELINE_FIXTURES / "feature_extraction"
CASES = load_cases("feature_extraction")
BY_ID = {case["id"]: case for case in CASES}


def run_case(case):
    pipe = pipeline("feature-extraction", model=str(FOLDER / case["model"]), **case.get("init", {}))
    return pipe(case["inputs"], **case.get("kwargs", {}))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_matches_reference(case):
    if "raises" in case:
        with pytest.raises(Exception) as info:
            run_case(case)
        assert type(info.value).__name__ == case["raises"]["type"]
        assert str(info.value) == case["raises"]["message"]
        return
    assert_matches(run_case(case), case["expected"])


def test_batched_rows_equal_single_on_real_tokens():
    pipe = pipeline("feature-extraction", model=str(FOLDER / "distilbert"))
    texts = BY_ID["list_batched"]["inputs"]
    batched = pipe(texts, batch_size=3, return_tensors=True)
    for text, row in zip(texts, batched):
        single = pipe(text, return_tensors=True)
        assert_close(row[:, :single.shape[1]], single)


def test_class_and_bad_option():
    pipe = pipeline("feature-extraction", model=str(FOLDER / "distilbert"))
    assert isinstance(pipe, FeatureExtractionPipeline)
    assert isinstance(pipe("hi", return_tensors=True), torch.Tensor)
    with pytest.raises(TypeError, match="unexpected options"):
        pipe("hi", max_new_tokens=3)
