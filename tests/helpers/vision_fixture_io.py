"""The vision preprocessing fixtures' format (tests/fixtures/vision), shared by
scripts/fixtures/make_vision_preprocessing_fixtures.py (run with transformers 4.37.2) and the tests (polyformer),
so both build the very same inputs and read results the same way. Imports neither library; torch only when a
recipe or result asks for it.

- images/*.png: small images drawn with Pillow (RGB, RGBA, L, LA, P with transparency, several sizes);
- cases.json: the calls and the reference's results, with arrays stored in arrays.npz by key;
- an input image is a recipe {"image": "rgb_40x30", "as": "pil" | "hwc" | "chw" | ...} (see `make_image`);
  a list of recipes is a batch; a dict {"stack": [...]} is one 4-D array.

Encoded results (anything else is plain JSON):
- an array / tensor:   {"__array__": "np" | "pt", "key": "case.3.pixel_values", "dtype": "float32", "shape": [...]}
- a dict-like result:  {"__dict__": {key: value}, "type": "BatchFeature"}
- an exception:        {"__error__": "ValueError", "message": "..."}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Mapping

import numpy as np

FOLDER = Path(__file__).resolve().parents[1] / "fixtures" / "vision"
IMAGES = FOLDER / "images"
# Reference exceptions whose type says little; polyformer raises ValueError / TypeError with a message instead.
VAGUE_ERRORS = {"AttributeError", "IndexError", "KeyError"}


def load_images(folder: Path = IMAGES) -> Dict[str, Any]:
    """name -> PIL image (fully read) of every PNG in `folder`."""
    import PIL.Image

    images = {}
    for path in sorted(Path(folder).glob("*.png")):
        with PIL.Image.open(path) as image:
            image.load()
            images[path.stem] = image.copy()
    return images


def make_image(recipe: Any, images: Mapping[str, Any]) -> Any:
    """An image input from a recipe: "pil" the image; "hwc" / "chw" uint8 arrays; "hwc_float01" float32 in
    [0, 1]; "hwc_float255" float64 in [0, 255]; "hw" a 2-D array; "hw1" / "1hw" one channel; "rgba_hwc" 4
    channels; "torch_chw" a uint8 torch tensor; {"stack": [...]} a 4-D batch; a list: a list of inputs; another
    dict: the same dict with its values made; anything else (text, bad input): itself."""
    if isinstance(recipe, list):
        return [make_image(item, images) for item in recipe]
    if not isinstance(recipe, dict):
        return recipe
    if "image" not in recipe and "stack" not in recipe:  # e.g. keyword arguments holding images
        return {key: make_image(value, images) for key, value in recipe.items()}
    if "stack" in recipe:
        return np.stack([make_image(item, images) for item in recipe["stack"]])
    image = images[recipe["image"]]
    kind = recipe.get("as", "pil")
    if kind == "pil":
        return image
    if kind == "rgba_hwc":
        return np.array(image.convert("RGBA"))
    if kind in ("hw", "hw1", "1hw"):
        grey = np.array(image.convert("L"))
        return {"hw": grey, "hw1": grey[..., None], "1hw": grey[None]}[kind]
    hwc = np.array(image.convert("RGB"))
    if kind == "hwc":
        return hwc
    if kind == "chw":
        return np.ascontiguousarray(hwc.transpose(2, 0, 1))
    if kind == "hwc_float01":
        return hwc.astype(np.float32) / 255
    if kind == "hwc_float255":
        return hwc.astype(np.float64)
    if kind == "hwc_out_of_range":
        return hwc.astype(np.float32) / 100 - 0.5
    if kind == "torch_chw":
        import torch

        return torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1)))
    raise ValueError(f"unknown image recipe {recipe!r}")


IDEFICS_TOKENS = {"base": ["<fake_token_around_image>", "<image>"],
                  "instruct": ["<fake_token_around_image>", "<image>", "<end_of_utterance>"]}
LLAMA = Path(__file__).resolve().parents[1] / "fixtures" / "tokenizers" / "llama"


def idefics_tokenizer(cls: Any, setup: str, fast: bool = True) -> Any:
    """A Llama tokenizer (the committed fixture model) set up as IDEFICS's: `<unk>` pads, and the image tokens
    (plus `<end_of_utterance>` for "instruct") are additional special tokens."""
    files = {"vocab_file": str(LLAMA / "tokenizer.model")}
    if fast:
        files["tokenizer_file"] = str(LLAMA / "tokenizer.json")
    tok = cls(**files, legacy=True)
    tok.add_special_tokens({"pad_token": "<unk>", "additional_special_tokens": IDEFICS_TOKENS[setup]})
    return tok


def _array_kind(value: Any) -> str | None:
    if isinstance(value, np.ndarray):
        return "np"
    if type(value).__module__.startswith("torch") and type(value).__name__ == "Tensor":
        return "pt"
    return None


def encode(value: Any, arrays: Dict[str, np.ndarray], key: str) -> Any:
    """JSON for a result; arrays go into `arrays` under `key` (and sub-keys)."""
    if isinstance(value, BaseException):
        return {"__error__": type(value).__name__, "message": str(value)}
    kind = _array_kind(value)
    if kind is not None:
        array = value.numpy() if kind == "pt" else value
        arrays[key] = array
        return {"__array__": kind, "key": key, "dtype": str(array.dtype), "shape": list(array.shape)}
    if hasattr(value, "data") and hasattr(value, "keys") and isinstance(value.data, dict):  # BatchFeature / Encoding
        return {"__dict__": {k: encode(v, arrays, f"{key}.{k}") for k, v in value.data.items()},
                "type": type(value).__name__}
    if isinstance(value, dict):
        return {str(k): encode(v, arrays, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v, arrays, f"{key}.{i}") for i, v in enumerate(value)]
    if hasattr(value, "item") and hasattr(value, "dtype"):
        return value.item()
    return value


def run(function, *args, **kwargs) -> Any:
    """`function(*args, **kwargs)`, or the exception it raised."""
    try:
        return function(*args, **kwargs)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:  # noqa: BLE001 (recorded, then compared by type)
        return err


def check(got: Any, expected: Any, arrays: Mapping[str, np.ndarray], where: str, atol: float = 1e-6,
          rtol: float = 1e-6) -> None:
    """Assert that a result matches the recorded one: same structure, array kinds, dtypes and shapes, values
    within `atol + rtol * |expected|` (pixel values are a few elementwise operations on the same bytes, so
    1e-6, tighter than the models' 1e-5), NaN where NaN; exceptions of the same type (a vague reference type may be a ValueError
    or TypeError here)."""
    if isinstance(expected, dict) and "__error__" in expected:
        assert isinstance(got, BaseException), f"{where}: expected {expected}, got {type(got).__name__}"
        kind = type(got).__name__
        assert kind == expected["__error__"] or (expected["__error__"] in VAGUE_ERRORS
                                                 and isinstance(got, (ValueError, TypeError))), \
            f"{where}: expected {expected}, got {kind}: {got}"
        return
    if isinstance(got, BaseException):
        raise AssertionError(f"{where}: raised {type(got).__name__}: {got}; expected {str(expected)[:300]}") from got
    if isinstance(expected, dict) and "__array__" in expected:
        kind = _array_kind(got)
        assert kind == expected["__array__"], f"{where}: expected a {expected['__array__']} array, got {type(got)}"
        array = got.numpy() if kind == "pt" else got
        want = arrays[expected["key"]]
        assert (str(array.dtype), list(array.shape)) == (expected["dtype"], expected["shape"]), \
            f"{where}: got {array.dtype} {list(array.shape)}, expected {expected['dtype']} {expected['shape']}"
        if array.dtype == bool or np.issubdtype(array.dtype, np.integer):
            assert np.array_equal(array, want), f"{where}: values differ"
        else:
            error = np.abs(array.astype(np.float64) - want)
            allowed = atol + rtol * np.abs(want)
            worst = np.nanmax(error - allowed) if array.size else -1.0
            assert np.array_equal(np.isnan(array), np.isnan(want)) and not worst > 0, \
                f"{where}: values differ by up to {np.nanmax(error)} (allowed {atol} + {rtol} * |expected|)"
        return
    if isinstance(expected, dict) and "__dict__" in expected:
        data = dict(got.data) if hasattr(got, "data") else dict(got)
        assert type(got).__name__ == expected["type"], f"{where}: got a {type(got).__name__}, expected {expected['type']}"
        assert list(data) == list(expected["__dict__"]), f"{where}: keys {list(data)} != {list(expected['__dict__'])}"
        for key, value in expected["__dict__"].items():
            check(data[key], value, arrays, f"{where}.{key}", atol, rtol)
        return
    if isinstance(expected, list):
        assert isinstance(got, (list, tuple)) and len(got) == len(expected), \
            f"{where}: got {str(got)[:300]}, expected a list of {len(expected)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            check(g, e, arrays, f"{where}[{i}]", atol, rtol)
        return
    assert got == expected, f"{where}: got {str(got)[:300]}, expected {str(expected)[:300]}"


CLIP = Path(__file__).resolve().parents[1] / "fixtures" / "tokenizers" / "clip"


def build(spec: Mapping[str, Any], classes: Mapping[str, Any]) -> Any:
    """An image processor or processor as an "objects" entry of cases.json says, from `classes` (class name ->
    the reference's or polyformer's class)."""
    kind = spec["class"]
    if kind in ("CLIPImageProcessor", "IdeficsImageProcessor"):
        return classes[kind](**spec["kwargs"])
    image_processor = build(spec["image_processor"], classes)
    if kind == "CLIPProcessor":
        tokenizer = classes[spec["tokenizer"]](vocab_file=str(CLIP / "vocab.json"), merges_file=str(CLIP / "merges.txt"))
        return classes[kind](image_processor, tokenizer)
    tokenizer = idefics_tokenizer(classes[spec["tokenizer"]], spec["setup"], fast=spec["tokenizer"].endswith("Fast"))
    return classes[kind](image_processor, tokenizer, **spec.get("kwargs", {}))


def auto_processor_call(processor: Any, picture: Any) -> dict:
    """The one call tests/fixtures/auto_processor records per object an Auto class returned (the reference's
    or polyformer's): a processor, image processor or tokenizer -> its output as plain lists."""
    name = type(processor).__name__
    if name == "CLIPProcessor":
        out = processor(text=["a photo of a cat", "two dogs"], images=picture, return_tensors="pt", padding=True)
    elif name == "IdeficsProcessor":
        out = processor([["User:", picture, "Describe this image.\nAssistant:"]], return_tensors="pt")
    elif name.endswith("ImageProcessor"):
        out = processor(picture, return_tensors="pt")
    else:  # a tokenizer
        out = processor(["a photo of a cat", "two dogs"])
    if not hasattr(out, "items"):  # IdeficsImageProcessor returns the pixel values alone
        return {"__tensor__": out.tolist()}
    return {key: value.tolist() if hasattr(value, "tolist") else value for key, value in out.items()}
