"""`polyformer run TASK MODEL [INPUT ...]`: JSON lines equal to the pipeline fixtures' results, inputs
from arguments or stdin, --opt parsing, --batch-size, --stream, clear errors."""

from __future__ import annotations

import io
import json

import pytest

from helpers.pipeline_cases import PIPELINE_FIXTURES, assert_matches, load_cases
from polyformer.cli import main
from polyformer.pipelines.cli import parse_input, parse_option

GEN = {c["id"]: c for c in load_cases("text_generation")}
T2T = {c["id"]: c for c in load_cases("text2text")}
FE = {c["id"]: c for c in load_cases("feature_extraction")}
LLAMA = str(PIPELINE_FIXTURES / "text_generation" / "llama")


def lines(text: str):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_parse_option_and_input():
    assert parse_option("max_new_tokens=5") == ("max_new_tokens", 5)
    assert parse_option("return_full_text=false") == ("return_full_text", False)
    assert parse_option("return-full-text=False") == ("return_full_text", False)
    assert parse_option("prefix=# a") == ("prefix", "# a")
    assert parse_option('candidate_labels=["a", "b"]') == ("candidate_labels", ["a", "b"])
    with pytest.raises(ValueError, match="key=value"):
        parse_option("oops")
    assert parse_input('"a\\nb"') == "a\nb"
    assert parse_input('{"question": "q", "context": "c"}') == {"question": "q", "context": "c"}
    assert parse_input("{not json") == "{not json"


def test_text_generation_from_arguments(capsys):
    case = GEN["llama.return_full_text_false"]
    assert main(["-q", "run", "text-generation", LLAMA, case["inputs"], "--opt", "max_new_tokens=5",
                 "--opt", "return_full_text=false"]) == 0
    assert_matches(lines(capsys.readouterr().out), [case["expected"]])


def test_text_generation_from_stdin_batched(capsys, monkeypatch):
    case = GEN["llama.list_batched"]
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(json.dumps(p) + "\n" for p in case["inputs"])))
    assert main(["-q", "run", "text-generation", LLAMA, "--batch-size", "2", "--opt", "max_new_tokens=5"]) == 0
    assert_matches(lines(capsys.readouterr().out), case["expected"])


def test_stream_prints_the_new_tokens(capsys):
    case = GEN["llama.streamer"]
    assert main(["-q", "run", "text-generation", LLAMA, json.dumps(case["inputs"]), "--stream",
                 "--opt", "max_new_tokens=6"]) == 0
    assert capsys.readouterr().out == case["streamed"]


def test_summarization_and_feature_extraction(capsys):
    case = T2T["summarization.list_unbatched"]
    assert main(["-q", "run", "summarization", str(PIPELINE_FIXTURES / "text2text" / "mvp"), *case["inputs"],
                 "--opt", "max_length=8"]) == 0
    assert_matches(lines(capsys.readouterr().out), [[r] for r in case["expected"]])
    case = FE["default"]
    assert main(["-q", "run", "feature-extraction", str(PIPELINE_FIXTURES / "feature_extraction" / "distilbert"),
                 case["inputs"]]) == 0
    assert_matches(lines(capsys.readouterr().out), [case["expected"]])


def test_errors_are_one_line(capsys):
    assert main(["-q", "run", "no-such-task", LLAMA, "x"]) == 1
    assert "Unknown task no-such-task" in capsys.readouterr().err
    assert main(["-q", "run", "text-generation", LLAMA, "x", "--opt", "oops"]) == 1
    assert "key=value" in capsys.readouterr().err
    assert main(["-q", "run", "feature-extraction", LLAMA, "x", "--stream"]) == 1
    assert "--stream is for text-generation" in capsys.readouterr().err
