"""Replay of the pipeline fixture cases written by scripts/fixtures/make_pipeline_generation_fixtures.py.

A case names its checkpoint folder, optional tokenizer ``setup``, constructor ``init`` options, the
``inputs``, call ``kwargs``, an optional torch ``seed``, and the reference's ``expected`` result (tensors
as ``{"__tensor__": nested list}``) or ``raises``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import torch

from helpers.tolerance import assert_close

PIPELINE_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pipelines"


def load_cases(task_dir: str) -> List[Dict[str, Any]]:
    return json.loads((PIPELINE_FIXTURES / task_dir / "cases.json").read_text())["cases"]


def setup_tokenizer(pipe, setup: Dict[str, Any]) -> None:
    if setup.get("pad_token") == "eos":
        pipe.tokenizer.pad_token = pipe.tokenizer.eos_token
    if "padding_side" in setup:
        pipe.tokenizer.padding_side = setup["padding_side"]


def assert_matches(got: Any, expected: Any, path: str = "result") -> None:
    """`got` equal to the fixture's `expected`: strings, ints and structure exactly, floats within the
    tolerance rule, tensors (``{"__tensor__": ...}``) as torch tensors."""
    if isinstance(expected, dict) and set(expected) == {"__tensor__"}:
        assert isinstance(got, torch.Tensor), f"{path}: expected a tensor, got {type(got).__name__}"
        ref = torch.tensor(expected["__tensor__"])
        assert list(got.shape) == list(ref.shape), f"{path}: shape {list(got.shape)} != {list(ref.shape)}"
        if ref.is_floating_point():
            assert_close(got.float(), ref.float(), name=path)
        else:
            assert got.tolist() == ref.tolist(), path
        return
    if isinstance(expected, dict):
        assert isinstance(got, dict), f"{path}: expected a dict, got {type(got).__name__}"
        assert list(got) == list(expected), f"{path}: keys {list(got)} != {list(expected)}"
        for key in expected:
            assert_matches(got[key], expected[key], f"{path}.{key}")
        return
    if isinstance(expected, list):
        assert isinstance(got, list), f"{path}: expected a list, got {type(got).__name__}"
        assert len(got) == len(expected), f"{path}: length {len(got)} != {len(expected)}"
        if expected and all(isinstance(x, float) for x in expected):
            assert_close(torch.tensor(got, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64),
                         name=path)
            return
        for i, (g, e) in enumerate(zip(got, expected)):
            assert_matches(g, e, f"{path}[{i}]")
        return
    if isinstance(expected, float):
        assert_close(float(got), expected, name=path)
        return
    assert got == expected, f"{path}: {got!r} != {expected!r}"
