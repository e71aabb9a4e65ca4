"""text2text-generation and summarization pipelines against transformers 4.37.2's on a tiny MVP
(tests/fixtures/pipelines/text2text/, scripts/fixtures/make_pipeline_generation_fixtures.py): every
option, single, listed and batched texts, and the summarization length warnings."""

from __future__ import annotations

import logging

import pytest

from helpers.pipeline_cases import PIPELINE_FIXTURES, assert_matches, load_cases
from polyformer import SummarizationPipeline, Text2TextGenerationPipeline, pipeline
from polyformer.pipelines.text2text_generation import ReturnType

FOLDER = PIPELINE_FIXTURES / "text2text"
CASES = load_cases("text2text")
BY_ID = {case["id"]: case for case in CASES}


def run_case(case):
    kwargs = dict(case.get("kwargs", {}))
    if case.get("return_type_enum"):
        kwargs["return_type"] = ReturnType(kwargs["return_type"])
    pipe = pipeline(case["task"], model=str(FOLDER / case["model"]), **case.get("init", {}))
    return pipe(case["inputs"], **kwargs)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["id"])
def test_matches_reference(case, caplog):
    if "raises" in case:
        with pytest.raises(Exception) as info:
            run_case(case)
        assert type(info.value).__name__ == case["raises"]["type"]
        return
    with caplog.at_level(logging.WARNING, logger="polyformer.pipelines"):
        got = run_case(case)
    assert_matches(got, case["expected"])
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("polyformer.pipelines")]
    assert logged == case["logged"]


def test_batched_equals_one_by_one():
    for task in ("text2text-generation", "summarization"):
        assert BY_ID[f"{task}.list_batched"]["expected"] == BY_ID[f"{task}.list_unbatched"]["expected"]


def test_classes_and_keys():
    folder = str(FOLDER / "mvp")
    assert type(pipeline("text2text-generation", model=folder)) is Text2TextGenerationPipeline
    summarizer = pipeline("summarization", model=folder)
    assert type(summarizer) is SummarizationPipeline
    assert list(summarizer("a b c", max_length=4)[0]) == ["summary_text"]
    with pytest.raises(ValueError, match="return_type"):
        summarizer("a", max_length=4, return_type=5)


def test_summarization_warns_on_long_max_length(caplog):
    summarizer = pipeline("summarization", model=str(FOLDER / "mvp"))
    with caplog.at_level(logging.WARNING, logger="polyformer.pipelines"):
        summarizer("Hello world", max_length=10)
    assert any("Your max_length is set to 10, but your input_length is only" in r.getMessage()
               for r in caplog.records)
