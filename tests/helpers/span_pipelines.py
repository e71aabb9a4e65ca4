"""Replay the token-classification / question-answering pipeline fixtures on polyformer.

The fixtures (``tests/fixtures/pipelines/<task>/cases.json``, written by
scripts/fixtures/make_pipeline_span_fixtures.py) hold tiny checkpoints without their ``vocab.txt``: the
vocabulary is ``tests/fixtures/tokenizers/distilbert/vocab.txt``, put back here. Results are compared
exactly except the scores: ``|got - ref| <= 1e-5 + 1e-5 * |ref|``.
"""

from __future__ import annotations

import json
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .tolerance import assert_close

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PIPELINES = FIXTURES / "pipelines"
VOCAB = FIXTURES / "tokenizers" / "distilbert" / "vocab.txt"


@lru_cache(maxsize=None)
def load(task: str) -> dict:
    return json.loads((PIPELINES / task / "cases.json").read_text())


def cases(task: str) -> list[dict]:
    return load(task)["cases"]


def checkpoint(task: str, model: str, folder: Path) -> Path:
    """A copy of the fixture's checkpoint in `folder`, with the tokenizer files complete."""
    out = folder / f"{task}-{model}"
    if not out.exists():
        shutil.copytree(PIPELINES / task / model, out)
        if model == "distilbert":
            shutil.copy(VOCAB, out / "vocab.txt")
    return out


def assert_same_result(got: Any, expected: Any, where: str = "result") -> None:
    """`got` equals the recorded result: same structure, keys in the same order, exact values except
    `score`s (within the shared tolerance)."""
    if isinstance(expected, dict):
        assert isinstance(got, dict), f"{where}: expected a dict, got {type(got).__name__}: {got!r}"
        assert list(got) == list(expected), f"{where}: keys {list(got)} != {list(expected)}"
        for key, value in expected.items():
            if key == "score":
                assert isinstance(got[key], (float, np.floating)), f"{where}.score: {type(got[key]).__name__}"
                assert_close(float(got[key]), value, name=f"{where}.score")
            else:
                assert_same_result(got[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list), f"{where}: expected a list, got {type(got).__name__}: {got!r}"
        assert len(got) == len(expected), f"{where}: {len(got)} items != {len(expected)}:\n{got}\n{expected}"
        for i, (a, b) in enumerate(zip(got, expected)):
            assert_same_result(a, b, f"{where}[{i}]")
    else:
        assert got == expected and type(got) is type(expected), f"{where}: {got!r} != {expected!r}"


def score_types(value: Any) -> set:
    if isinstance(value, dict):
        return {type(value["score"]).__name__} if "score" in value else set()
    if isinstance(value, list):
        return set().union(*(score_types(v) for v in value)) if value else set()
    return set()
