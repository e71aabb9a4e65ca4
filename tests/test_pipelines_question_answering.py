"""QuestionAnsweringPipeline against transformers 4.37.2's, on the fixtures of
scripts/fixtures/make_pipeline_span_fixtures.py: every call form (keywords, positional, dicts, lists,
SquadExample, X= / data=), top_k, doc_stride / max_seq_len over contexts longer than one window,
max_answer_len, handle_impossible_answer, align_to_words, batched lists, and the errors; then slow
tokenizers (CANINE's character tokenizer, DistilBERT's slow WordPiece): 4.37's SQuAD-window path, with
long contexts, max_question_len and batches."""

from __future__ import annotations

import json
import warnings

import pytest

from helpers.span_pipelines import PIPELINES, assert_same_result, cases, checkpoint, score_types

from polyformer import (CanineForQuestionAnswering, CanineTokenizer, DistilBertForQuestionAnswering, DistilBertTokenizer,
                        DistilBertTokenizerFast)
from polyformer.pipelines import QuestionAnsweringPipeline, SquadExample, pipeline
from polyformer.pipelines.question_answering import QuestionAnsweringArgumentHandler

TASK = "question-answering"
CASES = cases(TASK)
SHORT = {"question": "Where do I live?", "context": "My name is Wolfgang and I live in Berlin."}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return checkpoint(TASK, "distilbert", tmp_path_factory.mktemp("question-answering"))


@pytest.fixture(scope="module")
def model(folder):
    return DistilBertForQuestionAnswering.from_pretrained(folder).eval()


@pytest.fixture(scope="module")
def tokenizer(folder):
    return DistilBertTokenizerFast(vocab_file=str(folder / "vocab.txt"), model_max_length=64)


def call_args(case):
    form, inputs = case.get("form", "single"), case["inputs"]
    if form == "kwargs":
        return (), dict(inputs)
    if form == "positional":
        return tuple(inputs), {}
    if form in ("X", "data"):
        return (), {form: inputs}
    if form == "squad":
        items = inputs if isinstance(inputs, list) else [inputs]
        examples = [SquadExample(None, item["question"], item["context"], None, None, None) for item in items]
        return (examples if isinstance(inputs, list) else examples[0],), {}
    return (inputs,), {}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_reference(case, model, tokenizer):
    pipe = pipeline(TASK, model=model, tokenizer=tokenizer, **case.get("pipeline_kwargs", {}))
    args, kwargs = call_args(case)
    kwargs.update(case.get("call_kwargs", {}))
    if "raises" in case:
        with pytest.raises(ValueError) as info:
            pipe(*args, **kwargs)
        assert str(info.value) == case["raises"]["message"].strip("'")
        if case["raises"]["type"] == "KeyError":
            assert isinstance(info.value, KeyError)
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = pipe(*args, **kwargs)
    assert_same_result(got, case["output"])
    assert score_types(got) == {case["score_type"]}
    messages = sorted({str(w.message) for w in caught if issubclass(w.category, (FutureWarning, UserWarning))})
    assert [m for m in messages if "deprecated" in m] == [m for m in case["warnings"] if "deprecated" in m]


def test_long_context_uses_several_windows(model, tokenizer):
    """The long contexts of the fixtures really are split: max_seq_len 32 gives several windows."""
    pipe = QuestionAnsweringPipeline(model=model, tokenizer=tokenizer)
    item = next(c for c in CASES if c["name"] == "long-top_k1")["inputs"]
    chunks = list(pipe.preprocess(item, max_seq_len=32, doc_stride=8))
    assert len(chunks) > 3
    assert [c["is_last"] for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert all(c["input_ids"].shape[1] <= 32 for c in chunks)


def test_batched_equals_single(model, tokenizer):
    pipe = pipeline(TASK, model=model, tokenizer=tokenizer, max_seq_len=32, doc_stride=8, top_k=3)
    items = [c["inputs"] for c in CASES if c["name"].startswith("long-seq24")] + [SHORT]
    single = [pipe(item) for item in items]
    for batch_size in (2, 7):
        assert_same_result(pipe(items, batch_size=batch_size), single)


def test_loads_from_folder(folder):
    pipe = pipeline(TASK, model=str(folder))
    assert isinstance(pipe, QuestionAnsweringPipeline) and pipe.tokenizer.is_fast
    expected = next(c for c in CASES if c["name"] == "kwargs")["output"]
    assert_same_result(pipe(**SHORT), expected)


def test_missing_question_or_context_is_a_clear_error(model, tokenizer):
    pipe = pipeline(TASK, model=model, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="Unknown arguments"):
        pipe(context=SHORT["context"])
    with pytest.raises(ValueError, match="question:..., context:..."):
        pipe({"context": SHORT["context"]})
    with pytest.raises(ValueError, match="`context` cannot be empty"):
        pipe(question="Who?", context="")


# --- slow tokenizers ---------------------------------------------------------------------------------

SLOW_CASES = json.loads((PIPELINES / TASK / "slow_cases.json").read_text(encoding="utf-8"))["cases"]


@pytest.fixture(scope="module")
def slow_models(folder, model):
    canine = CanineForQuestionAnswering.from_pretrained(PIPELINES / TASK / "canine").eval()
    return {"canine": (canine, CanineTokenizer(model_max_length=64)),
            "distilbert": (model, DistilBertTokenizer(vocab_file=str(folder / "vocab.txt"), model_max_length=64))}


@pytest.mark.parametrize("case", SLOW_CASES, ids=[c["name"] for c in SLOW_CASES])
def test_slow_tokenizer_matches_reference(case, slow_models):
    model, tokenizer = slow_models[case["model"]]
    assert not tokenizer.is_fast
    pipe = pipeline(TASK, model=model, tokenizer=tokenizer, **case.get("pipeline_kwargs", {}))
    args, kwargs = call_args(case)
    got = pipe(*args, **kwargs, **case.get("call_kwargs", {}))
    assert_same_result(got, case["output"])
    assert score_types(got) == {case["score_type"]}


def test_canine_long_context_windows(slow_models):
    """A context longer than max_seq_len characters is split into padded windows every doc_stride characters,
    each mapping its context positions to whitespace words."""
    model, tokenizer = slow_models["canine"]
    pipe = QuestionAnsweringPipeline(model=model, tokenizer=tokenizer)
    item = {"question": "Who?", "context": next(c for c in SLOW_CASES if c["name"] == "canine-long-default")[
        "inputs"]["context"]}
    chunks = list(pipe.preprocess(item, max_seq_len=56, doc_stride=16))
    assert len(chunks) > 10 and all(c["input_ids"].shape == (1, 56) for c in chunks)
    assert [c["is_last"] for c in chunks] == [False] * (len(chunks) - 1) + [True]
    question_length = len("Who?") + 2  # [CLS] question [SEP]
    assert min(chunks[1]["token_to_orig_map"]) == question_length
    assert chunks[1]["token_to_orig_map"][question_length] == chunks[0]["token_to_orig_map"][question_length + 16]


def test_canine_pipeline_from_folder(tmp_path):
    """pipeline("question-answering", model=<CANINE folder>) loads the slow tokenizer and answers as 4.37."""
    case = next(c for c in SLOW_CASES if c["name"] == "canine-single")
    pipe = pipeline(TASK, model=str(PIPELINES / TASK / "canine"))
    assert isinstance(pipe.tokenizer, CanineTokenizer)
    assert_same_result(pipe(case["inputs"]), case["output"])


def test_squad_example_and_handler():
    example = SquadExample(None, "q?", "  Hello  big world", "big", 9, None)
    assert example.doc_tokens == ["Hello", "big", "world"]
    assert example.char_to_word_offset[:4] == [-1, -1, 0, 0]
    assert (example.start_position, example.end_position) == (1, 1)
    parsed = QuestionAnsweringArgumentHandler()(question=["a?", "b?"], context="ctx")
    assert [(e.question_text, e.context_text) for e in parsed] == [("a?", "ctx"), ("b?", "ctx")]
    assert QuestionAnsweringPipeline.create_sample(question="q", context="c").context_text == "c"


def test_generator_input_streams(model, tokenizer):
    """A generator of dicts gives an iterator of results, equal to the one-by-one results."""
    pipe = pipeline(TASK, model=model, tokenizer=tokenizer, max_seq_len=32, doc_stride=8)
    items = [SHORT, next(c for c in CASES if c["name"] == "long-top_k1")["inputs"]]
    streamed = list(pipe((item for item in items), batch_size=3))
    assert_same_result(streamed, [pipe(item) for item in items])


def test_public_names():
    import polyformer

    assert polyformer.SquadExample is SquadExample
    assert polyformer.QuestionAnsweringPipeline is QuestionAnsweringPipeline
    assert polyformer.QuestionAnsweringArgumentHandler is QuestionAnsweringArgumentHandler
