"""The GroupViT examples (examples/groupvit_*.py) run end to end on a tiny random model, offline."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import groupvit_segmentation  # noqa: E402
import groupvit_tiny  # noqa: E402
import groupvit_zero_shot  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("groupvit") / "tiny"
    groupvit_tiny.make_tiny(folder)
    return folder


def test_zero_shot_ranks_every_label(tiny, capsys):
    labels = ["a photo of a cat", "a photo of a dog", "a red house"]
    ranking = groupvit_zero_shot.main(["--model", str(tiny), "--labels", *labels])
    assert sorted(label for label, _ in ranking) == sorted(labels)
    probs = [p for _, p in ranking]
    assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0)
    model, processor = groupvit_tiny.load(str(tiny))
    inputs = processor(text=labels, images=groupvit_tiny.open_image(None), return_tensors="pt", padding=True)
    with torch.no_grad():
        expected = model(**inputs).logits_per_image.softmax(-1)[0]
    assert dict(ranking) == pytest.approx(dict(zip(labels, expected.tolist())))
    assert "1." in capsys.readouterr().out


def test_zero_shot_makes_the_tiny_model_when_none_is_given(tmp_path):
    ranking = groupvit_zero_shot.main(["--tiny-dir", str(tmp_path / "made"), "--labels", "sky", "sea"])
    assert (tmp_path / "made" / "model.safetensors").exists() and len(ranking) == 2


@pytest.mark.parametrize("size, mode", [(None, None), ((50, 70), "RGBA"), ((64, 40), "L")])
def test_segmentation_png(tiny, tmp_path, size, mode):
    args = ["--model", str(tiny), "--output", str(tmp_path / "seg.png"), "--labels", "sky", "grass", "sun"]
    if size is not None:
        path = tmp_path / "input.png"
        pixels = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 4), np.uint8)
        Image.fromarray(pixels, "RGBA").convert(mode).save(path)
        args += ["--image", str(path)]
    shares = groupvit_segmentation.main(args)
    written = Image.open(tmp_path / "seg.png")
    assert written.size == (size or (120, 80)) and written.mode == "RGB"
    colours = {tuple(c) for c in np.asarray(written).reshape(-1, 3)}
    assert 1 <= len(colours) <= 3 and colours <= {tuple(c) for c in groupvit_segmentation.palette(3)}
    assert sum(shares.values()) == pytest.approx(1.0)
