"""What every image processor shares: `BatchFeature` (its output), `ImageProcessingMixin` (preprocessor_config.json
load / save), `BaseImageProcessor` (call -> preprocess, and the rescale / normalize / center_crop methods),
`get_size_dict` (the reference's size arguments), and opening images from local files (never from the network).
"""

from __future__ import annotations

import copy
import json
import logging
import os
from collections import UserDict
from typing import Any, Dict, Iterable, List, Optional, Union
from urllib.parse import urlparse

import numpy as np
import PIL.Image

from ..hub import prepare_save_directory, read_json, resolve_file, write_atomically
from ..saving import save_transaction
from ..push_to_hub import PushToHubMixin
from ..tokenization.encoding import TensorType, _tensor_functions
from ..value_rules import BOOL, Rule, check_values
from . import transforms

__all__ = ["BatchFeature", "ImageProcessingMixin", "BaseImageProcessor", "get_size_dict", "is_url", "open_image",
           "IMAGE_PROCESSOR_NAME"]

logger = logging.getLogger(__name__)

IMAGE_PROCESSOR_NAME = "preprocessor_config.json"
HUB_ARGUMENTS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")


class BatchFeature(UserDict):
    """What an image processor returns: a dict of model inputs (`pixel_values`, ...), readable as items or
    attributes (`out["pixel_values"]`, `out.pixel_values`).

    Args:
        data: the values (lists of arrays, arrays or tensors).
        tensor_type: "pt", "np", "tf" or "jax" to convert the values now (a list of equally shaped arrays
            is stacked into one batch).
    """

    def __init__(self, data: Optional[Dict[str, Any]] = None, tensor_type: Union[None, str, TensorType] = None):
        super().__init__(data)
        self.convert_to_tensors(tensor_type)

    def __getitem__(self, item: str) -> Any:
        if not isinstance(item, str):
            raise KeyError(f"{item!r}: a BatchFeature is indexed by key (such as 'pixel_values'), not by position")
        return self.data[item]

    def __getattr__(self, item: str) -> Any:
        try:
            return self.__dict__["data"][item]
        except KeyError:
            raise AttributeError(f"BatchFeature has no attribute or key {item!r}") from None

    def __getstate__(self) -> Dict[str, Any]:
        return {"data": self.data}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.data = state["data"]

    def convert_to_tensors(self, tensor_type: Union[None, str, TensorType] = None) -> "BatchFeature":
        """Convert every value to a `tensor_type` tensor in place (no-op for None)."""
        if tensor_type is None:
            return self
        tensor_type = TensorType.parse(tensor_type, "return_tensors")
        is_tensor, as_tensor = _tensor_functions(tensor_type)
        for key, value in self.items():
            if is_tensor(value):
                continue
            if isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
                shapes = sorted({tuple(item.shape) for item in value})
                if len(shapes) > 1:
                    raise ValueError(f"Unable to create a {tensor_type.value!r} tensor from {key!r}: its items have "
                                     f"different shapes {shapes}; make them one size (e.g. do_resize / "
                                     "do_center_crop) or pass return_tensors=None for a list")
                value = np.stack(value)
            try:
                self[key] = as_tensor(value)
            except Exception as err:
                raise ValueError(f"Unable to create a {tensor_type.value!r} tensor from {key!r}: {err}") from err
        return self

    def to(self, *args: Any, **kwargs: Any) -> "BatchFeature":
        """`tensor.to(*args, **kwargs)` on every floating-point torch tensor (a device and / or a dtype);
        other tensors only move to the device, if one is given. In place; returns self."""
        import torch

        device = kwargs.get("device")
        if device is None and args:
            if isinstance(args[0], (str, int, torch.device)):
                device = args[0]
            elif not isinstance(args[0], torch.dtype):
                raise TypeError(f"BatchFeature.to expects a device or a dtype, got {type(args[0]).__name__}")
        self.data = {key: value.to(*args, **kwargs) if torch.is_tensor(value) and torch.is_floating_point(value)
                     else value.to(device=device) if torch.is_tensor(value) and device is not None else value
                     for key, value in self.data.items()}
        return self


_SIZE_KEYS = ({"height", "width"}, {"shortest_edge"}, {"shortest_edge", "longest_edge"}, {"longest_edge"})


def get_size_dict(size: Union[int, Iterable[int], Dict[str, int], None] = None, max_size: Optional[int] = None,
                  height_width_order: bool = True, default_to_square: bool = True, param_name: str = "size") -> dict:
    """A size argument as the reference's dict: an int is {"height": n, "width": n} (or {"shortest_edge": n}
    when not `default_to_square`, plus "longest_edge" from `max_size`), a pair is (height, width) (or
    (width, height) when not `height_width_order`), a dict must use one of the known key sets."""
    if isinstance(size, dict):
        size_dict = size
    elif isinstance(size, int) and default_to_square:
        if max_size is not None:
            raise ValueError(f"{param_name}: cannot give both an int size (default_to_square) and max_size")
        size_dict = {"height": size, "width": size}
    elif isinstance(size, int):
        size_dict = {"shortest_edge": size, **({"longest_edge": max_size} if max_size is not None else {})}
    elif isinstance(size, (tuple, list)) and len(size) == 2:
        size_dict = {"height": size[0], "width": size[1]} if height_width_order else {"height": size[1],
                                                                                      "width": size[0]}
    elif size is None and max_size is not None and not default_to_square:
        size_dict = {"longest_edge": max_size}
    else:
        raise ValueError(f"{param_name}={size!r} cannot be read as a size: give an int, (height, width) or a dict")
    if set(size_dict) not in _SIZE_KEYS:
        raise ValueError(f"{param_name} must have one of the key sets {[sorted(k) for k in _SIZE_KEYS]}, got "
                         f"{sorted(size_dict)}")
    for key, value in size_dict.items():
        check_image_side(value, f"{param_name}[{key!r}]")
    return size_dict


# The longest image side a processor may resize or crop to: 16384 x 16384 RGB in float32 is 3.2 GB already,
# and no model here takes more than a few hundred pixels. A preprocessor_config.json asking for more (size
# 10**6 would need terabytes) is refused before any image is touched.
MAX_IMAGE_SIDE = 16384


_IMAGE_SIDE = Rule(lambda v: not isinstance(v, bool) and isinstance(v, (int, np.integer)) and 1 <= v <= MAX_IMAGE_SIDE,
                   f"an int in [1, {MAX_IMAGE_SIDE}]")


def check_image_side(value: Any, name: str) -> None:
    """`value` must be an int in [1, MAX_IMAGE_SIDE] (a size / crop size / image size); else ValueError naming
    `name`."""
    check_values({name: value}, {name: _IMAGE_SIDE})


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and bool(np.isfinite(value))


def _numbers(value: Any, nonzero: bool) -> bool:
    items = value if isinstance(value, (list, tuple)) else [value]
    return bool(items) and all(_finite(item) and not (nonzero and item == 0) for item in items)


_PROCESSOR_RULES = {
    "image_size": _IMAGE_SIDE.or_none(),
    "rescale_factor": Rule(_finite, "a finite number").or_none(),
    "image_mean": Rule(lambda v: _numbers(v, nonzero=False), "a finite number or a non-empty list of them").or_none(),
    "image_std": Rule(lambda v: _numbers(v, nonzero=True), "a non-zero finite number or a non-empty list of them"
                      ).or_none(),
}


def check_processor_values(values: Dict[str, Any], source: str = IMAGE_PROCESSOR_NAME) -> None:
    """Validate the generic values of an image processor (preprocessor_config.json's keys) with the rules of
    `value_rules`: `do_*` switches must be booleans, `image_size` a valid side, `rescale_factor` a finite
    number and `image_mean` / `image_std` finite numbers (or lists of them; the std non-zero). `size` and
    `crop_size` are checked by `get_size_dict`. A ValueError names the key, the value and what is allowed."""
    switches = {key: BOOL for key in values if key.startswith("do_")}
    check_values(values, {**switches, **_PROCESSOR_RULES}, source)


def is_url(text: str) -> bool:
    """Whether `text` is a URL and nothing else (a scheme and a host, no spaces), as the reference decides."""
    if " " in text:
        return False
    parsed = urlparse(text)
    return bool(parsed.scheme and parsed.netloc)


def open_image(source: Union[str, os.PathLike], argument: str = "image") -> PIL.Image.Image:
    """The image in a local file (a path, or a file:// URL), fully read; a web URL raises, since polyformer
    downloads nothing but Hub files. Errors name `argument`."""
    path = os.fspath(source)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if path.startswith("file://"):
        path = urlparse(path).path
    elif is_url(path):
        raise ValueError(f"{argument}: {path!r} is a URL, and polyformer does not download images (it talks to "
                         "nothing but the Hugging Face Hub); download the image yourself and pass a PIL image or "
                         "a local path")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{argument}: no image file at {path!r}")
    try:
        with open(path, "rb") as f:
            image = PIL.Image.open(f)
            image.load()
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"{argument}: cannot read {path!r} as an image: {err}") from err
    return image


class ImageProcessingMixin(PushToHubMixin):
    """preprocessor_config.json load / save. Its values are the processor's attributes (unknown keyword
    arguments are kept as attributes too, and saved back), plus "image_processor_type"."""

    def __init__(self, **kwargs: Any):
        kwargs.pop("feature_extractor_type", None)
        self._processor_class = kwargs.pop("processor_class", None)
        for key, value in kwargs.items():
            setattr(self, key, value)

    def _set_processor_class(self, processor_class: str) -> None:
        self._processor_class = processor_class

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, os.PathLike], **kwargs: Any):
        """Load from a folder or a Hub id holding preprocessor_config.json, or from that file itself.
        Hub arguments (cache_dir, revision, token, local_files_only, force_download, subfolder) choose
        where to read; other keyword arguments override the saved values."""
        hub = {key: kwargs.pop(key) for key in HUB_ARGUMENTS if key in kwargs}
        kwargs.pop("use_auth_token", None)
        return cls.from_dict(cls.get_image_processor_dict(pretrained_model_name_or_path, **hub), **kwargs)

    @classmethod
    def get_image_processor_dict(cls, pretrained_model_name_or_path: Union[str, os.PathLike], **hub: Any) -> dict:
        name = os.fspath(pretrained_model_name_or_path)
        path = name if os.path.isfile(name) else resolve_file(name, IMAGE_PROCESSOR_NAME, **hub)
        return read_json(path, IMAGE_PROCESSOR_NAME)

    @classmethod
    def from_dict(cls, image_processor_dict: Dict[str, Any], **kwargs: Any):
        """`cls(**dict)`; `size` / `crop_size` in kwargs replace the dict's, other kwargs naming an
        attribute set it afterwards (`return_unused_kwargs=True` also returns the rest)."""
        values = dict(image_processor_dict)
        return_unused = kwargs.pop("return_unused_kwargs", False)
        values.pop("image_processor_type", None)
        for key in ("size", "crop_size"):
            if key in kwargs and key in values:
                values[key] = kwargs.pop(key)
        processor = cls(**values)
        unused = {}
        for key, value in kwargs.items():
            if hasattr(processor, key):
                setattr(processor, key, value)
            else:
                unused[key] = value
        check_processor_values(vars(processor))
        return (processor, unused) if return_unused else processor

    @classmethod
    def from_json_file(cls, json_file: Union[str, os.PathLike]):
        processor = cls(**read_json(json_file, IMAGE_PROCESSOR_NAME))
        check_processor_values(vars(processor))
        return processor

    def to_dict(self) -> Dict[str, Any]:
        out = copy.deepcopy(self.__dict__)
        out["image_processor_type"] = type(self).__name__
        return out

    def to_json_string(self) -> str:
        values = {key: value.tolist() if isinstance(value, np.ndarray) else value
                  for key, value in self.to_dict().items()}
        processor_class = values.pop("_processor_class", None)
        if processor_class is not None:
            values["processor_class"] = processor_class
        return json.dumps(values, indent=2, sort_keys=True) + "\n"

    def to_json_file(self, json_file_path: Union[str, os.PathLike]) -> None:
        write_atomically(json_file_path, self.to_json_string().encode("utf-8"))

    def save_pretrained(self, save_directory: Union[str, os.PathLike], push_to_hub: bool = False,
                        **kwargs: Any) -> List[str]:
        """Write preprocessor_config.json into `save_directory` (created if needed); returns its path."""
        save_directory = prepare_save_directory(save_directory, push_to_hub)
        path = os.path.join(save_directory, IMAGE_PROCESSOR_NAME)
        with save_transaction(save_directory):
            self.to_json_file(path)
        return [path]

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"

    def fetch_images(self, image_url_or_urls: Union[str, List[str]]):
        """The image(s) at local paths or file:// URLs; web URLs raise (polyformer downloads no images)."""
        if isinstance(image_url_or_urls, list):
            return [self.fetch_images(item) for item in image_url_or_urls]
        if isinstance(image_url_or_urls, (str, os.PathLike)):
            return open_image(image_url_or_urls, "image_url_or_urls")
        raise TypeError(f"image_url_or_urls must be a str or a list of them, got {type(image_url_or_urls).__name__}")


class BaseImageProcessor(ImageProcessingMixin):
    """Base of the image processors: `processor(images, **kwargs)` is `processor.preprocess(images, **kwargs)`."""

    model_input_names = ["pixel_values"]

    def __call__(self, images, **kwargs: Any):
        return self.preprocess(images, **kwargs)

    def preprocess(self, images, **kwargs: Any):
        raise NotImplementedError(f"{type(self).__name__} must implement preprocess")

    def rescale(self, image: np.ndarray, scale: float, data_format=None, input_data_format=None,
                **kwargs: Any) -> np.ndarray:
        """`image * scale`, as float32."""
        return transforms.rescale(image, scale, data_format=data_format, input_data_format=input_data_format,
                                  **kwargs)

    def normalize(self, image: np.ndarray, mean, std, data_format=None, input_data_format=None,
                  **kwargs: Any) -> np.ndarray:
        """`(image - mean) / std` per channel."""
        return transforms.normalize(image, mean, std, data_format=data_format, input_data_format=input_data_format)

    def center_crop(self, image: np.ndarray, size: Dict[str, int], data_format=None, input_data_format=None,
                    **kwargs: Any) -> np.ndarray:
        """The central (size["height"], size["width"]) window (zero-padded when the image is smaller)."""
        size = get_size_dict(size, param_name="crop_size")
        if "height" not in size or "width" not in size:
            raise ValueError(f"crop_size must have the keys 'height' and 'width', got {sorted(size)}")
        return transforms.center_crop(image, (size["height"], size["width"]), data_format=data_format,
                                      input_data_format=input_data_format)
