"""AutoProcessor / AutoImageProcessor against transformers 4.37.2: on folders the reference saved
(tests/fixtures/auto_processor, written by scripts/fixtures/make_auto_processor_fixtures.py) they return the
classes the reference's Auto classes return, and those give the reference's outputs for one call each."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from polyformer import AutoImageProcessor, AutoProcessor, CLIPProcessor
from helpers.vision_fixture_io import auto_processor_call
from helpers.tolerance import assert_close

FIXTURES = Path(__file__).parent / "fixtures"
FOLDER = FIXTURES / "auto_processor"
EXPECTED = json.loads((FOLDER / "expected.json").read_text(encoding="utf-8"))
AUTOS = {"AutoProcessor": AutoProcessor, "AutoImageProcessor": AutoImageProcessor}
# Where polyformer is deliberately more helpful than the reference (README: "Auto classes").
DIFFERENCES = {("image_processor_only", "AutoProcessor"): "CLIPImageProcessor",
               ("legacy_feature_extractor", "AutoProcessor"): "CLIPImageProcessor"}


def image():
    with Image.open(FIXTURES / EXPECTED["image"]) as picture:
        picture.load()
        return picture.copy()


CASES = [(case, auto) for case in sorted(EXPECTED["cases"]) for auto in AUTOS]


@pytest.mark.parametrize("case,auto", CASES, ids=[f"{c}-{a}" for c, a in CASES])
def test_matches_reference(case, auto):
    expected = EXPECTED["cases"][case][auto]
    folder = FOLDER / case
    if (case, auto) in DIFFERENCES:
        assert expected["error"] == "OSError"
        assert type(AUTOS[auto].from_pretrained(folder)).__name__ == DIFFERENCES[case, auto]
        return
    if "error" in expected:
        with pytest.raises(OSError, match="preprocessor_config.json"):
            AUTOS[auto].from_pretrained(folder)
        return
    made = AUTOS[auto].from_pretrained(folder)
    assert type(made).__name__ == expected["class"]
    for part in ("image_processor", "tokenizer"):
        if part in expected:
            assert type(getattr(made, part)).__name__ == expected[part]
    got = auto_processor_call(made, image())
    assert sorted(got) == sorted(expected["output"])
    for key, value in expected["output"].items():
        if key in ("pixel_values", "__tensor__"):
            assert_close(np.asarray(got[key]), np.asarray(value), atol=1e-6, rtol=1e-6,  # pixels: elementwise
                         name=f"{case} {auto} {key}")
        else:  # ids and masks (ragged lists without return_tensors)
            assert got[key] == value, f"{case} {auto} {key}"


def test_use_fast_false_gives_the_slow_tokenizer():
    processor = AutoProcessor.from_pretrained(FOLDER / "groupvit", use_fast=False)
    assert isinstance(processor, CLIPProcessor) and type(processor.tokenizer).__name__ == "CLIPTokenizer"


def test_round_trip_through_polyformer_save(tmp_path):
    AutoProcessor.from_pretrained(FOLDER / "idefics").save_pretrained(tmp_path)
    again = AutoProcessor.from_pretrained(tmp_path)
    assert type(again).__name__ == "IdeficsProcessor"
    original = AutoProcessor.from_pretrained(FOLDER / "idefics")
    assert auto_processor_call(again, image()) == auto_processor_call(original, image())


def test_unknown_and_missing(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text('{"image_processor_type": "ViTImageProcessor"}')
    with pytest.raises(ValueError, match="ViTImageProcessor"):
        AutoImageProcessor.from_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text('{"processor_class": "Blip2Processor"}')
    with pytest.raises(ValueError, match="Blip2Processor"):
        AutoProcessor.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        AutoProcessor.from_pretrained(tmp_path / "absent")
    with pytest.raises(EnvironmentError):
        AutoProcessor()
