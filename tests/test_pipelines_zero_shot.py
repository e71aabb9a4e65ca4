"""zero-shot-classification and zero-shot-image-classification pipelines against transformers 4.37.2's
(tests/fixtures/pipelines/zero_shot_classification/ and zero_shot_image_classification/, written by
scripts/fixtures/make_pipeline_classification_fixtures.py).

Text: tiny DistilBertForSequenceClassification NLI checkpoints (real BERT vocabulary) whose label2id puts
entailment last, first, or nowhere (the -1 fallback, with its warning); candidate labels as a list, a
comma string or the positional argument, hypothesis_template, multi_label (and the deprecated
multi_class), truncation, lists one by one and batched, errors.
Image: a tiny GroupViTModel with the trained CLIP vocabulary and a CLIPImageProcessor; local paths and
PIL images (RGB, RGBA, grayscale, palette), hypothesis_template, one and several labels, batches."""

from __future__ import annotations

import functools
import logging

import pytest
from PIL import Image

from helpers.pipeline_cases import PIPELINE_FIXTURES, assert_matches
from helpers.pipeline_classification import IMAGES, call_id, calls, load_fixture, run_call
from polyformer import (
    AutoImageProcessor,
    AutoTokenizer,
    GroupViTModel,
    ZeroShotClassificationPipeline,
    ZeroShotImageClassificationPipeline,
    pipeline,
)

TEXT_TASK = "zero_shot_classification"
IMAGE_TASK = "zero_shot_image_classification"
TEXT = "the team won the game and the city was happy ."
LABELS = ["sports", "politics", "music", "war"]
ERROR_WORDS = {"error_empty_labels": "candidate_labels", "error_blank_labels": "candidate_labels",
               "error_template": "hypothesis_template"}


@functools.lru_cache(maxsize=None)
def zero_shot(checkpoint: str) -> ZeroShotClassificationPipeline:
    return pipeline("zero-shot-classification", model=str(PIPELINE_FIXTURES / TEXT_TASK / checkpoint))


@functools.lru_cache(maxsize=None)
def zero_shot_image() -> ZeroShotImageClassificationPipeline:
    return pipeline("zero-shot-image-classification", model=str(PIPELINE_FIXTURES / IMAGE_TASK / "groupvit"))


# --- text ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call", calls(TEXT_TASK, errors=False), ids=call_id)
def test_text_matches_reference(call, caplog):
    """Labels in order exactly, scores to 1e-5, the same warnings (multi_class)."""
    pipe = zero_shot(call["checkpoint"])
    caplog.clear()  # the constructor's warning is tested below
    with caplog.at_level(logging.WARNING, logger="polyformer"):
        got = run_call(pipe, call)
    assert_matches(got, call["expected"])
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == call["warnings"]


@pytest.mark.parametrize("call", calls(TEXT_TASK, errors=True), ids=call_id)
def test_text_errors(call):
    with pytest.raises(ValueError) as info:
        run_call(zero_shot(call["checkpoint"]), call)
    assert call["raises"]["type"] == "ValueError"
    assert ERROR_WORDS[call["name"]] in str(info.value)


@pytest.mark.parametrize("checkpoint", list(load_fixture(TEXT_TASK)["checkpoints"]))
def test_entailment_id_and_warning(checkpoint, caplog):
    facts = load_fixture(TEXT_TASK)["checkpoints"][checkpoint]
    with caplog.at_level(logging.WARNING, logger="polyformer"):
        pipe = pipeline("zero-shot-classification", model=str(PIPELINE_FIXTURES / TEXT_TASK / checkpoint))
    assert pipe.entailment_id == facts["entailment_id"]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == facts["init_warnings"]


def test_text_batched_equals_one_by_one_in_the_fixture():
    by_name = {c["name"]: c["expected"] for c in calls(TEXT_TASK, errors=False)}
    batched = [name for name in by_name if "@batch" in name]
    assert len(batched) >= 7
    for name in batched:
        assert_matches(by_name[name], by_name[name.split("@")[0]])


def test_one_sequence_batched_over_its_labels():
    """batch_size also batches the (sequence, hypothesis) pairs of a single text."""
    pipe = zero_shot("nli")
    assert_matches(pipe(TEXT, candidate_labels=LABELS, batch_size=3), pipe(TEXT, candidate_labels=LABELS))


def test_constructor_options_are_defaults():
    pipe = pipeline("zero-shot-classification", model=str(PIPELINE_FIXTURES / TEXT_TASK / "nli"),
                    candidate_labels=LABELS, multi_label=True)
    assert_matches(pipe(TEXT), zero_shot("nli")(TEXT, candidate_labels=LABELS, multi_label=True))


@pytest.mark.parametrize("args, kwargs, match", [
    ((), {}, "candidate_labels"),
    ((), {"candidate_labels": []}, "candidate_labels"),
    ((), {"candidate_labels": [1, 2]}, "candidate_labels"),
    ((LABELS, "extra"), {}, "extra arguments"),
])
def test_text_bad_calls(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        zero_shot("nli")(TEXT, *args, **kwargs)


def test_empty_sequence():
    with pytest.raises(ValueError, match="sequences"):
        zero_shot("nli")("", candidate_labels=LABELS)


# --- image ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call", calls(IMAGE_TASK, errors=False), ids=call_id)
def test_image_matches_reference(call):
    assert_matches(run_call(zero_shot_image(), call), call["expected"])


def test_image_batched_equals_one_by_one_in_the_fixture():
    by_name = {c["name"]: c["expected"] for c in calls(IMAGE_TASK, errors=False)}
    for name in ("list@batch2", "list@batch3"):
        assert_matches(by_name[name], by_name["list"])


def test_image_pipeline_from_objects():
    folder = str(PIPELINE_FIXTURES / IMAGE_TASK / "groupvit")
    pipe = pipeline("zero-shot-image-classification", model=GroupViTModel.from_pretrained(folder),
                    tokenizer=AutoTokenizer.from_pretrained(folder),
                    image_processor=AutoImageProcessor.from_pretrained(folder))
    image = Image.open(IMAGES / "rgb_40x30.png")
    labels = ["cat", "dog", "car"]
    assert_matches(pipe(image, candidate_labels=labels), zero_shot_image()(image, candidate_labels=labels))


@pytest.mark.parametrize("image, kwargs, error, match", [
    ("https://example.com/cat.png", {"candidate_labels": ["cat"]}, ValueError, "URL"),
    (str(IMAGES / "missing.png"), {"candidate_labels": ["cat"]}, FileNotFoundError, "missing.png"),
    (3, {"candidate_labels": ["cat"]}, ValueError, "PIL"),
    (str(IMAGES / "rgb_40x30.png"), {}, ValueError, "candidate_labels"),
    (str(IMAGES / "rgb_40x30.png"), {"candidate_labels": []}, ValueError, "candidate_labels"),
    (str(IMAGES / "rgb_40x30.png"), {"candidate_labels": ["cat"], "hypothesis_template": "no slot"}, ValueError,
     "hypothesis_template"),
])
def test_image_bad_input(image, kwargs, error, match):
    with pytest.raises(error, match=match):
        zero_shot_image()(image, **kwargs)


def test_image_as_base64_and_file_url():
    """A base64 string (plain or as a data: URI) and a file:// URL give the path's result."""
    import base64

    path = IMAGES / "rgb_40x30.png"
    encoded = base64.b64encode(path.read_bytes()).decode()
    expected = zero_shot_image()(str(path), candidate_labels=["cat", "dog"])
    for source in (encoded, "data:image/png;base64," + encoded, path.as_uri()):
        assert_matches(zero_shot_image()(source, candidate_labels=["cat", "dog"]), expected)


def test_bfloat16_models():
    """torch_dtype=bfloat16 runs both pipelines (scores computed in float32 from bfloat16 logits)."""
    import torch

    text = pipeline("zero-shot-classification", model=str(PIPELINE_FIXTURES / TEXT_TASK / "nli"),
                    torch_dtype=torch.bfloat16)
    got = text([TEXT, "the king ."], candidate_labels=LABELS, batch_size=4)
    assert [sorted(r["labels"]) for r in got] == [sorted(LABELS)] * 2
    assert abs(sum(got[0]["scores"]) - 1.0) < 1e-5
    image = pipeline("zero-shot-image-classification", model=str(PIPELINE_FIXTURES / IMAGE_TASK / "groupvit"),
                     torch_dtype=torch.bfloat16)
    scores = image(str(IMAGES / "rgb_40x30.png"), candidate_labels=["cat", "dog", "car"])
    assert sorted(s["label"] for s in scores) == ["car", "cat", "dog"]
    assert abs(sum(s["score"] for s in scores) - 1.0) < 1e-5
