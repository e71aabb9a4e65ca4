"""text-classification / sentiment-analysis pipeline against transformers 4.37.2's
(tests/fixtures/pipelines/text_classification/, written by
scripts/fixtures/make_pipeline_classification_fixtures.py): tiny DistilBertForSequenceClassification
checkpoints (real BERT vocabulary) with 2 labels, 1 label, a multi-label problem and a single-label
problem, plus GPTJForSequenceClassification (CodeGen BPE vocabulary, end-of-text as pad) and
MvpForSequenceClassification (MVP BPE vocabulary); top_k, function_to_apply, text pairs, the legacy
return_all_scores, tokenizer options, lists one by one and batched, errors."""

from __future__ import annotations

import functools

import pytest

from helpers.pipeline_cases import PIPELINE_FIXTURES, assert_matches
from helpers.pipeline_classification import call_id, calls, run_call
from polyformer import DistilBertForSequenceClassification, TextClassificationPipeline, pipeline
from polyformer.pipelines.text_classification import ClassificationFunction, default_function

TASK = "text_classification"
FOLDER = PIPELINE_FIXTURES / TASK
TEXT = "this is a good day for the people of the city ."


@functools.lru_cache(maxsize=None)
def classifier(checkpoint: str) -> TextClassificationPipeline:
    return pipeline("text-classification", model=str(FOLDER / checkpoint))


@pytest.mark.parametrize("call", calls(TASK, errors=False), ids=call_id)
def test_matches_reference(call):
    """Labels, order and result shapes exactly, scores to 1e-5; the legacy option warns as 4.37 does."""
    if call["python_warnings"]:
        with pytest.warns(UserWarning, match="return_all_scores"):
            got = run_call(classifier(call["checkpoint"]), call)
    else:
        got = run_call(classifier(call["checkpoint"]), call)
    assert_matches(got, call["expected"])


@pytest.mark.parametrize("call", calls(TASK, errors=True), ids=call_id)
def test_errors(call):
    with pytest.raises(Exception) as info:
        run_call(classifier(call["checkpoint"]), call)
    assert type(info.value).__name__ == call["raises"]["type"]
    assert "text_pair" in str(info.value)


def test_batched_equals_one_by_one_in_the_fixture():
    by_name = {c["name"]: c["expected"] for c in calls(TASK, errors=False)}
    batched = [name for name in by_name if "@batch" in name]
    assert len(batched) >= 10
    for name in batched:
        assert_matches(by_name[name], by_name[name.split("@")[0]])


def test_sentiment_analysis_alias_and_model_object():
    model = DistilBertForSequenceClassification.from_pretrained(str(FOLDER / "binary"))
    pipe = pipeline("sentiment-analysis", model=model, tokenizer=str(FOLDER / "binary"))
    assert isinstance(pipe, TextClassificationPipeline)
    assert_matches(pipe(TEXT, top_k=None), classifier("binary")(TEXT, top_k=None))


def test_function_enum_equals_its_name():
    pipe = classifier("multi_label")
    for function in ClassificationFunction:
        assert_matches(pipe(TEXT, function_to_apply=function, top_k=None),
                       pipe(TEXT, function_to_apply=function.value, top_k=None))


def test_default_function_rules():
    expected = {"binary": "softmax", "one_label": "sigmoid", "multi_label": "sigmoid", "single_label": "softmax"}
    for checkpoint, name in expected.items():
        assert default_function(classifier(checkpoint).model.config) == ClassificationFunction(name)


def test_constructor_options_are_defaults():
    """Options given to the constructor apply to every call. As in 4.37, a single text whose call names no
    top_k is wrapped in one more list even when the constructor set top_k (checked against 4.37.2 by hand:
    [[{LABEL_0}, {LABEL_1}]])."""
    pipe = pipeline("text-classification", model=str(FOLDER / "single_label"), top_k=2, function_to_apply="none")
    expected = classifier("single_label")(TEXT, top_k=2, function_to_apply="none")
    assert_matches(pipe(TEXT), [expected])
    assert_matches(pipe([TEXT]), [expected])


@pytest.mark.parametrize("kwargs, match", [
    ({"function_to_apply": "relu"}, "function_to_apply"),
    ({"top_k": 0}, "top_k"),
    ({"top_k": "all"}, "top_k"),
])
def test_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        classifier("binary")(TEXT, **kwargs)


@pytest.mark.parametrize("inputs, match", [
    (3, "text"),
    ({"text": "a", "pair": "b"}, "text_pair"),
])
def test_bad_inputs(inputs, match):
    with pytest.raises(ValueError, match=match):
        classifier("binary")(inputs)
