"""Replay of the classification pipeline fixtures written by
scripts/fixtures/make_pipeline_classification_fixtures.py (tests/fixtures/pipelines/<task>/cases.json).

A call names its ``checkpoint`` folder, the ``inputs`` (an image is ``{"image": <file under
tests/fixtures/vision/images/>, "as": "path" | "pil"}``), positional ``args``, keyword ``kwargs`` and the
``batch_size`` (None: one by one), and holds the reference's ``expected`` result or the error it
``raises``, plus the ``warnings`` it logged."""

from __future__ import annotations

import functools
import json
from typing import Any, Dict, List

from PIL import Image

from helpers.pipeline_cases import PIPELINE_FIXTURES

IMAGES = PIPELINE_FIXTURES.parent / "vision" / "images"


@functools.lru_cache(maxsize=None)
def load_fixture(task_dir: str) -> Dict[str, Any]:
    return json.loads((PIPELINE_FIXTURES / task_dir / "cases.json").read_text(encoding="utf-8"))


def calls(task_dir: str, *, errors: bool) -> List[Dict[str, Any]]:
    """The fixture's calls that raise (errors=True) or return a result (errors=False)."""
    return [c for c in load_fixture(task_dir)["calls"] if ("raises" in c) == errors]


def materialize(value: Any) -> Any:
    """JSON inputs -> pipeline inputs: image markers become path strings or PIL images."""
    if isinstance(value, dict) and set(value) == {"image", "as"}:
        path = IMAGES / value["image"]
        return str(path) if value["as"] == "path" else Image.open(path)
    if isinstance(value, list):
        return [materialize(v) for v in value]
    return value


def run_call(pipe, call: Dict[str, Any]) -> Any:
    extra = {} if call["batch_size"] is None else {"batch_size": call["batch_size"]}
    return pipe(materialize(call["inputs"]), *call.get("args", []), **call["kwargs"], **extra)


def call_id(call: Dict[str, Any]) -> str:
    return call["name"]
