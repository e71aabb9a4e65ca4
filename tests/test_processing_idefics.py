"""IdeficsProcessor against transformers 4.37.2 (tests/fixtures/vision, written by
scripts/fixtures/make_vision_preprocessing_fixtures.py with IDEFICS's tokenizer set up from the committed Llama
fixture model): input_ids, attention_mask, pixel_values (to 1e-6) and image_attention_mask for single prompts,
batches with different image counts, no images, padding, truncation, eos and <end_of_utterance>; then local image
paths, the no-network rule, bad input, saving and loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from polyformer import IdeficsImageProcessor, IdeficsProcessor, LlamaTokenizer, LlamaTokenizerFast
from helpers.vision_fixture_io import FOLDER, build, check, idefics_tokenizer, load_images, make_image, run

DOC = json.loads((FOLDER / "cases.json").read_text(encoding="utf-8"))
ARRAYS = dict(np.load(FOLDER / "arrays.npz"))
IMAGES = load_images()
CASES = [case for case in DOC["cases"] if case["object"].startswith("idefics_processor")]
CLASSES = {cls.__name__: cls for cls in (IdeficsImageProcessor, IdeficsProcessor, LlamaTokenizerFast)}
# polyformer's processor also takes the slow tokenizer (4.37 refuses it), with the same results
SLOW_CLASSES = {**CLASSES, "LlamaTokenizer": LlamaTokenizer}


@pytest.fixture(scope="module")
def processors():
    made = {}
    for name, spec in DOC["objects"].items():
        if name.startswith("idefics_processor"):
            made[name, "fast"] = build(spec, CLASSES)
            made[name, "slow"] = build({**spec, "tokenizer": "LlamaTokenizer"}, SLOW_CLASSES)
            made[name, "slow"].tokenizer.padding_side = "left"  # as the fast one, for padding=True
    return made


@pytest.mark.parametrize("kind", ["fast", "slow"])
@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c['object'].split(':')[1]}-{c['method']}"
                                             for i, c in enumerate(CASES)])
def test_matches_reference(case, kind, processors):
    method = getattr(processors[case["object"], kind], case["method"])
    got = run(method, *make_image(case["args"], IMAGES), **make_image(case["kwargs"], IMAGES))
    check(got, case["expected"], ARRAYS, f"{case['object']} ({kind}) {str(case['args'])[:120]} {case['kwargs']}")


def test_cases_cover_the_layout():
    """The recorded batches really hold different image counts, padding and cut images."""
    shapes = [case["expected"]["__dict__"]["pixel_values"]["shape"] for case in CASES if case["method"] == "__call__"]
    assert {shape[1] for shape in shapes} >= {1, 2, 3} and any(shape[0] == 2 for shape in shapes)


@pytest.mark.parametrize("setup", ["base", "instruct"])
def test_saved_files_match_reference(setup, processors, tmp_path):
    processor = processors[f"idefics_processor:{setup}", "fast"]
    assert processor.save_pretrained(tmp_path) == []
    saved = DOC["saved"][f"idefics_processor:{setup}"]
    assert sorted(path.name for path in tmp_path.iterdir()) == saved["files"]
    assert json.loads((tmp_path / "preprocessor_config.json").read_text()) == saved["json"]["preprocessor_config.json"]
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["processor_class"] == "IdeficsProcessor"
    assert processor.model_input_names == saved["model_input_names"]
    loaded = IdeficsProcessor.from_pretrained(tmp_path)
    assert type(loaded.tokenizer) is LlamaTokenizerFast
    prompt = ["User:", IMAGES["rgb_40x30"], "Describe it."]
    assert all(torch.equal(a, b) for a, b in zip(loaded(prompt).values(), processor(prompt).values()))
    assert loaded.tokenizer_was_trained_with_end_of_utterance_token == (setup == "instruct")


@pytest.fixture(scope="module")
def processor(processors):
    return processors["idefics_processor:instruct", "fast"]


def test_local_paths_are_images(processor, tmp_path):
    IMAGES["rgba_32x24"].save(tmp_path / "cat.png")
    want = processor([["User:", IMAGES["rgba_32x24"], "What is it?"]])
    for source in (tmp_path / "cat.png", f"file://{tmp_path / 'cat.png'}"):
        got = processor([["User:", source, "What is it?"]])
        assert all(torch.equal(got[key], want[key]) for key in want)
    assert processor([["a/relative/path.png looks like text"]])["pixel_values"].abs().sum() == 0


@pytest.mark.parametrize("item, error, match", [
    ("https://example.com/cat.png", ValueError, r"prompts\[0\]\[1\]: 'https://example.com/cat.png' is a URL"),
    (Path("/nonexistent/cat.png"), FileNotFoundError, r"prompts\[0\]\[1\]: no image file"),
    (42, TypeError, r"prompts\[0\]\[1\] must be text"),
    (np.zeros((8, 8, 4), np.uint8), ValueError, r"prompts\[0\]: images\[0\] has shape \(8, 8, 4\)"),
    (np.zeros((8, 8), np.uint8), ValueError, r"prompts\[0\]: images\[0\] has shape \(8, 8\)"),
])
def test_bad_items_name_the_argument(processor, item, error, match):
    with pytest.raises(error, match=match):
        processor([["User:", item, "Describe it."]])


def test_unreadable_file(processor, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG but not really")
    with pytest.raises(ValueError, match=r"prompts\[1\]\[0\]: cannot read .*broken.png"):
        processor([["ok"], [tmp_path / "broken.png"]])


def test_image_count_must_match_the_image_tokens(processor):
    with pytest.raises(ValueError, match=r"prompts\[1\] has 1 image\(s\) but its text would hold 2 <image> tokens"):
        processor([["fine", IMAGES["l_25x25"]], ["User: <image> here", IMAGES["l_25x25"]]])
    with pytest.raises(ValueError, match=r"prompts\[0\] has 0 image\(s\) but its text would hold 1"):
        processor(["text with a stray <image> token"])


def test_prompt_shapes_and_tensors(processor):
    with pytest.raises(TypeError, match=r"prompts\[1\] must be a list"):
        processor([["a", IMAGES["l_25x25"]], "b"])
    with pytest.raises(TypeError, match="non-empty list"):
        processor([])
    single = processor("just a sentence")
    assert single["input_ids"].shape[0] == 1 and single["image_attention_mask"].dtype == torch.bool
    as_numpy = processor([["User:", IMAGES["p_30x20"], "and", IMAGES["la_20x28"]]], return_tensors="np")
    as_torch = processor([["User:", IMAGES["p_30x20"], "and", IMAGES["la_20x28"]]])
    assert all(isinstance(v, np.ndarray) and np.array_equal(v, as_torch[k].numpy()) for k, v in as_numpy.items())
    out = processor([["User:", IMAGES["rgb_40x30"]]], transform=lambda image: torch.ones(3, 5, 5))
    assert out["pixel_values"].shape == (1, 1, 3, 5, 5) and out["pixel_values"].sum() == 75


def test_end_of_utterance_default_from_init(processors):
    base = processors["idefics_processor:base", "fast"]
    on = IdeficsProcessor(base.image_processor, base.tokenizer, add_end_of_utterance_token=True)
    prompt = ["first", "second"]
    assert "first<end_of_utterance>second" in on.decode(on(prompt)["input_ids"][0].tolist())
    assert "<end_of_utterance>" not in base.decode(base(prompt)["input_ids"][0].tolist())


def test_end_of_utterance_option_is_saved(processors, tmp_path):
    base = processors["idefics_processor:base", "fast"]
    IdeficsProcessor(base.image_processor, base.tokenizer, add_end_of_utterance_token=True).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert saved == {"add_end_of_utterance_token": True, "processor_class": "IdeficsProcessor"}
    loaded = IdeficsProcessor.from_pretrained(tmp_path)
    assert loaded(["first", "second"])["input_ids"].shape[1] > base(["first", "second"])["input_ids"].shape[1]


def test_tokenizer_needs_the_image_tokens():
    plain = LlamaTokenizerFast(tokenizer_file=str(FOLDER.parent / "tokenizers" / "llama" / "tokenizer.json"),
                               legacy=True)
    with pytest.raises(ValueError, match="lacks"):
        IdeficsProcessor(IdeficsImageProcessor(image_size=8), plain)
    no_pad = idefics_tokenizer(LlamaTokenizerFast, "base")
    no_pad.pad_token = None
    processor = IdeficsProcessor(IdeficsImageProcessor(image_size=8), no_pad)
    with pytest.raises(ValueError, match="pad token"):
        processor([["short"], ["a much longer prompt than the first one"]])
