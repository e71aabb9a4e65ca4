"""fill-mask pipeline against transformers 4.37.2's (tests/fixtures/pipelines/fill_mask/, written by
scripts/fixtures/make_pipeline_classification_fixtures.py): a tiny DistilBertForMaskedLM with a real BERT
vocabulary (its first 3,000 entries); top_k, targets (in and out of the vocabulary), several masks,
tokenizer_kwargs, lists one by one and batched, errors."""

from __future__ import annotations

import functools
import logging

import pytest

from helpers.pipeline_cases import PIPELINE_FIXTURES, assert_matches
from helpers.pipeline_classification import call_id, calls, run_call
from polyformer import AutoTokenizer, DistilBertForMaskedLM, FillMaskPipeline, PipelineException, pipeline

TASK = "fill_mask"
FOLDER = PIPELINE_FIXTURES / TASK
# words the error message must name (polyformer words some errors itself)
ERROR_WORDS = {"error_no_mask": "[MASK]", "error_empty_targets": "target"}


@functools.lru_cache(maxsize=None)
def fill(checkpoint: str = "mlm") -> FillMaskPipeline:
    return pipeline("fill-mask", model=str(FOLDER / checkpoint))


@pytest.mark.parametrize("call", calls(TASK, errors=False), ids=call_id)
def test_matches_reference(call, caplog):
    """Scores to 1e-5; tokens, token strings, sequences and order exactly; the same warnings."""
    with caplog.at_level(logging.WARNING, logger="polyformer"):
        got = run_call(fill(call["checkpoint"]), call)
    assert_matches(got, call["expected"])
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == call["warnings"]


@pytest.mark.parametrize("call", calls(TASK, errors=True), ids=call_id)
def test_errors(call):
    with pytest.raises(Exception) as info:
        run_call(fill(call["checkpoint"]), call)
    assert type(info.value).__name__ == call["raises"]["type"]
    assert ERROR_WORDS[call["name"]] in str(info.value)


def test_batched_equals_one_by_one_in_the_fixture():
    by_name = {c["name"]: c["expected"] for c in calls(TASK, errors=False)}
    for name in ("list@batch2", "list@batch3", "list_two_masks@batch2"):
        assert_matches(by_name[name], by_name[name.split("@")[0]])


def test_model_object_and_tokenizer():
    """A model object with a tokenizer object gives the folder's results."""
    model = DistilBertForMaskedLM.from_pretrained(str(FOLDER / "mlm"))
    pipe = pipeline("fill-mask", model=model, tokenizer=AutoTokenizer.from_pretrained(str(FOLDER / "mlm")))
    assert isinstance(pipe, FillMaskPipeline)
    text = "the man went to the [MASK] ."
    assert_matches(pipe(text, top_k=3), fill()(text, top_k=3))


def test_constructor_options_are_defaults():
    pipe = pipeline("fill-mask", model=str(FOLDER / "mlm"), top_k=2, targets=["house", "park", "school"])
    text = "the man went to the [MASK] ."
    assert_matches(pipe(text), fill()(text, top_k=2, targets=["house", "park", "school"]))
    assert len(pipe(text, top_k=1)) == 1


def test_tokenizer_without_mask_token():
    model = DistilBertForMaskedLM.from_pretrained(str(FOLDER / "mlm"))
    tokenizer = AutoTokenizer.from_pretrained(str(FOLDER / "mlm"))
    tokenizer.mask_token = None
    with pytest.raises(PipelineException, match="mask_token"):
        pipeline("fill-mask", model=model, tokenizer=tokenizer)


@pytest.mark.parametrize("bad, match", [
    (dict(inputs=3), "text"),
    (dict(inputs="the [MASK] .", top_k=0), "top_k"),
    (dict(inputs="the [MASK] .", targets=7), "targets"),
])
def test_bad_input(bad, match):
    inputs = bad.pop("inputs")
    with pytest.raises(ValueError, match=match):
        fill()(inputs, **bad)


def test_bfloat16_model():
    """torch_dtype=bfloat16: the model runs in bfloat16, scores come out as Python floats (softmax in float32)."""
    import torch

    pipe = pipeline("fill-mask", model=str(FOLDER / "mlm"), torch_dtype=torch.bfloat16)
    assert pipe.torch_dtype == torch.bfloat16
    got = pipe(["the man went to the [MASK] .", "the [MASK] went to the [MASK] ."], top_k=2, batch_size=2)
    assert [len(r) for r in got] == [2, 2] and all(isinstance(p["score"], float) for p in got[0])
    assert all(len(row) == 2 for row in got[1])
