"""TokenClassificationPipeline against transformers 4.37.2's, on the fixtures of
scripts/fixtures/make_pipeline_span_fixtures.py: every aggregation strategy, fast and slow tokenizers,
ignore_labels, the deprecated grouped_entities / ignore_subwords, stride over long texts, batched lists,
CANINE, and the errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from helpers.span_pipelines import assert_same_result, cases, checkpoint, score_types

from polyformer import (
    CanineForTokenClassification,
    CanineTokenizer,
    DistilBertForTokenClassification,
    DistilBertTokenizer,
    DistilBertTokenizerFast,
)
from polyformer.pipelines import AggregationStrategy, TokenClassificationPipeline, pipeline

TASK = "token-classification"
CASES = cases(TASK)
MODEL_CLASSES = {"distilbert": DistilBertForTokenClassification, "canine": CanineForTokenClassification}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("token-classification")
    return {name: checkpoint(TASK, name, root) for name in MODEL_CLASSES}


@pytest.fixture(scope="module")
def models(folders):
    return {name: cls.from_pretrained(folders[name]).eval() for name, cls in MODEL_CLASSES.items()}


def make_tokenizer(model: str, kind: str, folder):
    if model == "canine":
        return CanineTokenizer(model_max_length=64)
    cls = DistilBertTokenizerFast if kind == "fast" else DistilBertTokenizer
    return cls(vocab_file=str(folder / "vocab.txt"), model_max_length=64)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_reference(case, models, folders):
    tokenizer = make_tokenizer(case["model"], case["tokenizer"], folders[case["model"]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pipe = pipeline(TASK, model=models[case["model"]], tokenizer=tokenizer, **case.get("pipeline_kwargs", {}))
            if "raises" in case:
                with pytest.raises(Exception) as info:
                    pipe(case["inputs"], **case.get("call_kwargs", {}))
                assert type(info.value).__name__ == case["raises"]["type"] or isinstance(info.value, ValueError)
                return
            got = pipe(case["inputs"], **case.get("call_kwargs", {}))
        finally:
            messages = sorted({str(w.message) for w in caught if issubclass(w.category, (FutureWarning, UserWarning))})
    assert_same_result(got, case["output"])
    if case["score_type"] is not None:
        assert score_types(got) == {case["score_type"]}
    assert [m for m in messages if "deprecated" in m] == [m for m in case["warnings"] if "deprecated" in m]


def test_error_types_match_reference(models, folders):
    """Where 4.37 raises a KeyError (an unknown strategy name) polyformer's error is also a ValueError."""
    tokenizer = make_tokenizer("distilbert", "fast", folders["distilbert"])
    pipe = pipeline(TASK, model=models["distilbert"], tokenizer=tokenizer)
    with pytest.raises(KeyError, match="aggregation_strategy must be one of"):
        pipe("hello", aggregation_strategy="longest")
    with pytest.raises(ValueError, match="longest"):
        pipe("hello", aggregation_strategy="longest")


def test_enum_and_string_agree(models, folders):
    tokenizer = make_tokenizer("distilbert", "fast", folders["distilbert"])
    pipe = TokenClassificationPipeline(model=models["distilbert"], tokenizer=tokenizer)
    text = "My name is Wolfgang and I live in Berlin."
    for strategy in AggregationStrategy:
        assert pipe(text, aggregation_strategy=strategy) == pipe(text, aggregation_strategy=strategy.value.upper())
    assert AggregationStrategy.FIRST == "first"


def test_loads_from_folder_and_ner_alias(folders):
    """pipeline("ner", model=folder) loads the model and the fast tokenizer (offsets) from the folder."""
    expected = next(c for c in CASES if c["name"] == "fast-simple-1")
    pipe = pipeline("ner", model=str(folders["distilbert"]), aggregation_strategy="simple")
    assert isinstance(pipe, TokenClassificationPipeline)
    assert pipe.tokenizer.is_fast
    assert_same_result(pipe(expected["inputs"]), expected["output"])


def test_batched_equals_single(models, folders):
    tokenizer = make_tokenizer("distilbert", "fast", folders["distilbert"])
    pipe = pipeline(TASK, model=models["distilbert"], tokenizer=tokenizer, aggregation_strategy="max")
    texts = [c["inputs"] for c in CASES if c["name"].startswith("fast-none-")]
    one_by_one = [pipe(text) for text in texts]
    for batch_size in (2, 4):
        assert_same_result(pipe(texts, batch_size=batch_size), [_plain(r) for r in one_by_one])


def test_user_offset_mapping(models, folders):
    """A slow tokenizer has no offsets; the caller may pass them (one list of (start, end) per token)."""
    text = "My name is Wolfgang"
    slow = make_tokenizer("distilbert", "slow", folders["distilbert"])
    fast = make_tokenizer("distilbert", "fast", folders["distilbert"])
    offsets = [tuple(pair) for pair in fast(text, return_offsets_mapping=True)["offset_mapping"]]
    got = pipeline(TASK, model=models["distilbert"], tokenizer=slow)(text, offset_mapping=offsets, ignore_labels=[])
    want = pipeline(TASK, model=models["distilbert"], tokenizer=fast)(text, ignore_labels=[])
    assert [(e["start"], e["end"], e["word"]) for e in got] == [(e["start"], e["end"], e["word"]) for e in want]


def _plain(value):
    if isinstance(value, dict):
        return {k: (float(v) if isinstance(v, np.floating) else _plain(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def test_generator_input_streams(models, folders):
    tokenizer = make_tokenizer("distilbert", "fast", folders["distilbert"])
    pipe = pipeline(TASK, model=models["distilbert"], tokenizer=tokenizer, aggregation_strategy="first")
    texts = [c["inputs"] for c in CASES if c["name"].startswith("fast-none-")]
    streamed = list(pipe((text for text in texts), batch_size=2))
    assert_same_result([_plain(r) for r in streamed], [_plain(pipe(text)) for text in texts])


def test_public_names():
    import polyformer

    assert polyformer.AggregationStrategy is AggregationStrategy
    assert polyformer.TokenClassificationPipeline is TokenClassificationPipeline
    assert polyformer.pipeline is pipeline
