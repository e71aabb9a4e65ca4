"""Image transforms on numpy arrays, with the reference's (transformers 4.37) rounding and dtypes.

An image is a PIL image or an array (numpy, or a torch / TensorFlow / JAX tensor, converted) of shape
(H, W, C) ("channels_last") or (C, H, W) ("channels_first") with C = 1 or 3; the layout is inferred
(channels first when the first axis has 1 or 3 entries) unless given. Resizing goes through PIL, so a
float image is turned into uint8 on the way (×255 first when its values lie in [0, 1]) and back.
Nothing here imports torch.
"""

from __future__ import annotations

import enum
from typing import Any, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import PIL.Image

__all__ = [
    "ChannelDimension", "PILImageResampling", "OPENAI_CLIP_MEAN", "OPENAI_CLIP_STD", "is_pil_image", "is_valid_image",
    "to_numpy_array", "make_list_of_images", "infer_channel_dimension_format", "get_channel_dimension_axis",
    "get_image_size", "to_channel_dimension_format", "get_resize_output_image_size", "to_pil_image", "resize",
    "rescale", "normalize", "center_crop", "convert_to_rgb", "is_scaled_image",
]

PILImageResampling = PIL.Image.Resampling
OPENAI_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
OPENAI_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


class ChannelDimension(str, enum.Enum):
    FIRST = "channels_first"
    LAST = "channels_last"

    @classmethod
    def parse(cls, value: Any, argument: str) -> "ChannelDimension":
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{argument}={value!r} is not valid; expected 'channels_first' or 'channels_last'") \
                from None


Format = Union[ChannelDimension, str, None]


def is_pil_image(image: Any) -> bool:
    return isinstance(image, PIL.Image.Image)


def _tensor_kind(value: Any) -> Optional[str]:
    """"torch", "tensorflow" or "jax" for a tensor of that library (found without importing it)."""
    module = type(value).__module__.split(".")[0]
    if module == "torch" and type(value).__name__ in ("Tensor", "Parameter"):
        return "torch"
    if module in ("tensorflow", "jax", "jaxlib") and hasattr(value, "shape") and hasattr(value, "dtype"):
        return module
    return None


def is_valid_image(image: Any) -> bool:
    """A PIL image, a numpy array or a torch / TensorFlow / JAX tensor."""
    return is_pil_image(image) or isinstance(image, np.ndarray) or _tensor_kind(image) is not None


def to_numpy_array(image: Any) -> np.ndarray:
    if is_pil_image(image):
        return np.array(image)
    if isinstance(image, np.ndarray):
        return image
    if _tensor_kind(image) == "torch":
        return image.detach().cpu().numpy()
    if _tensor_kind(image) is not None:
        return np.asarray(image)
    raise ValueError(f"an image must be a PIL image, a numpy array or a tensor, got {type(image).__name__}")


def make_list_of_images(images: Any, argument: str = "images", expected_ndims: int = 3) -> List[Any]:
    """A list of single images from one image, a list / tuple of images, or a batched (4-D) array."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError(f"{argument} is an empty list; pass at least one image")
        for i, image in enumerate(images):
            if not is_valid_image(image):
                raise ValueError(f"{argument}[{i}] must be a PIL image, a numpy array or a tensor, "
                                f"got {type(image).__name__}")
        return list(images)
    if is_pil_image(images):
        return [images]
    if not is_valid_image(images):
        raise ValueError(f"{argument} must be a PIL image, a numpy array, a tensor, or a list of them; "
                        f"got {type(images).__name__}")
    if images.ndim == expected_ndims + 1:
        return list(images)
    if images.ndim == expected_ndims:
        return [images]
    raise ValueError(f"{argument}: an image array must have {expected_ndims} dimensions (height, width, channels "
                     f"or channels, height, width), or {expected_ndims + 1} for a batch; got shape "
                     f"{tuple(images.shape)}")


def infer_channel_dimension_format(image: np.ndarray, num_channels: Union[int, Sequence[int], None] = None
                                   ) -> ChannelDimension:
    """FIRST when the channel-first axis has 1 or 3 entries, else LAST when the last one has, else an error."""
    allowed = (1, 3) if num_channels is None else (num_channels,) if isinstance(num_channels, int) else num_channels
    if image.ndim not in (3, 4):
        raise ValueError(f"an image must have 3 dimensions (or 4 for a batch), got shape {tuple(image.shape)}")
    first, last = (0, 2) if image.ndim == 3 else (1, 3)
    if image.shape[first] in allowed:
        return ChannelDimension.FIRST
    if image.shape[last] in allowed:
        return ChannelDimension.LAST
    raise ValueError(f"cannot find the channel axis of an image of shape {tuple(image.shape)}: it needs "
                     f"{' or '.join(map(str, allowed))} channels first or last (RGBA and other channel counts "
                     "are not images here; convert them to RGB, or pass input_data_format)")


def get_channel_dimension_axis(image: np.ndarray, input_data_format: Format = None) -> int:
    fmt = infer_channel_dimension_format(image) if input_data_format is None else ChannelDimension(input_data_format)
    return image.ndim - 3 if fmt == ChannelDimension.FIRST else image.ndim - 1


def get_image_size(image: np.ndarray, channel_dim: Format = None) -> Tuple[int, int]:
    """(height, width)."""
    fmt = infer_channel_dimension_format(image) if channel_dim is None else ChannelDimension(channel_dim)
    return (image.shape[-2], image.shape[-1]) if fmt == ChannelDimension.FIRST else (image.shape[-3], image.shape[-2])


def to_channel_dimension_format(image: np.ndarray, channel_dim: Format,
                                input_channel_dim: Format = None) -> np.ndarray:
    """`image` with its channels moved to `channel_dim` (None keeps them where they are)."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    source = infer_channel_dimension_format(image) if input_channel_dim is None else ChannelDimension(input_channel_dim)
    if channel_dim is None:
        return image
    target = ChannelDimension.parse(channel_dim, "data_format")
    if source == target:
        return image
    return image.transpose((2, 0, 1) if target == ChannelDimension.FIRST else (1, 2, 0))


def get_resize_output_image_size(input_image: np.ndarray, size: Union[int, Sequence[int]],
                                 default_to_square: bool = True, max_size: Optional[int] = None,
                                 input_data_format: Format = None) -> Tuple[int, int]:
    """(height, width) after resizing: `size` as given when it is a pair, a square when `default_to_square`,
    else the shorter edge becomes `size` and the longer one keeps the aspect ratio, rounded down (and
    capped by `max_size`)."""
    if isinstance(size, (tuple, list)):
        if len(size) == 2:
            return tuple(size)
        if len(size) != 1:
            raise ValueError(f"size must have 1 or 2 elements if it is a list or tuple, got {size!r}")
        size = size[0]
    if default_to_square:
        return size, size
    height, width = get_image_size(input_image, input_data_format)
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = size, int(size * long / short)
    if max_size is not None:
        if max_size <= size:
            raise ValueError(f"max_size = {max_size} must be strictly greater than the requested size for the "
                             f"smaller edge size = {size}")
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    return (new_long, new_short) if width <= height else (new_short, new_long)


def _needs_255(image: np.ndarray) -> bool:
    """Whether a float image must be scaled by 255 to become uint8 for PIL (values in [0, 1] that are not
    all integers); integer-valued images must lie in [0, 255]."""
    if image.dtype == np.uint8:
        return False
    if np.allclose(image, image.astype(int)):
        if np.all(image >= 0) and np.all(image <= 255):
            return False
        raise ValueError(f"an image with values in [{image.min()}, {image.max()}] cannot be converted to uint8 for "
                         "resizing; pixel values must lie in [0, 255] (or [0, 1] for float images)")
    if np.all(image >= 0) and np.all(image <= 1):
        return True
    raise ValueError(f"an image with values in [{image.min()}, {image.max()}] cannot be converted to uint8 for "
                     "resizing; float pixel values must lie in [0, 1] (or be whole numbers in [0, 255])")


def to_pil_image(image: Any, do_rescale: Optional[bool] = None, input_data_format: Format = None) -> PIL.Image.Image:
    """A PIL image from an array (channels last, a single channel squeezed, ×255 when `do_rescale`)."""
    if is_pil_image(image):
        return image
    image = to_channel_dimension_format(to_numpy_array(image), ChannelDimension.LAST, input_data_format)
    if image.shape[-1] == 1:
        image = image[..., 0]
    if do_rescale if do_rescale is not None else _needs_255(image):
        image = rescale(image, 255)
    return PIL.Image.fromarray(image.astype(np.uint8))


def resize(image: np.ndarray, size: Tuple[int, int], resample: Optional[int] = None,
           reducing_gap: Optional[int] = None, data_format: Format = None, return_numpy: bool = True,
           input_data_format: Format = None) -> Union[np.ndarray, PIL.Image.Image]:
    """`image` resized to `size` = (height, width) by PIL (`resample` defaults to bilinear), in
    `data_format` (default: the input's)."""
    if len(size) != 2:
        raise ValueError(f"size must be (height, width), got {size!r}")
    resample = PILImageResampling.BILINEAR if resample is None else resample
    rescaled = False
    if not is_pil_image(image):
        input_data_format = infer_channel_dimension_format(image) if input_data_format is None else input_data_format
        rescaled = _needs_255(image)
        image = to_pil_image(image, do_rescale=rescaled, input_data_format=input_data_format)
    height, width = size
    resized = image.resize((width, height), resample=resample, reducing_gap=reducing_gap)
    if not return_numpy:
        return resized
    array = np.array(resized)
    if array.ndim == 2:
        array = array[..., None]
    target = input_data_format if data_format is None else data_format
    array = to_channel_dimension_format(array, target or ChannelDimension.LAST, ChannelDimension.LAST)
    return rescale(array, 1 / 255) if rescaled else array


def rescale(image: np.ndarray, scale: float, data_format: Format = None, dtype: np.dtype = np.float32,
            input_data_format: Format = None) -> np.ndarray:
    """`image * scale` as `dtype` (float32)."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    out = image * scale
    if data_format is not None:
        out = to_channel_dimension_format(out, data_format, input_data_format)
    return out.astype(dtype)


def _per_channel(values: Any, channels: int, name: str, dtype) -> np.ndarray:
    if isinstance(values, Iterable) and not isinstance(values, str):
        values = list(values)
        if len(values) != channels:
            raise ValueError(f"{name} has {len(values)} values but the image has {channels} channels")
    else:
        values = [values] * channels
    return np.array(values, dtype=dtype)


def normalize(image: np.ndarray, mean: Union[float, Iterable[float]], std: Union[float, Iterable[float]],
              data_format: Format = None, input_data_format: Format = None) -> np.ndarray:
    """`(image - mean) / std` per channel; integer images become float32, float images keep their dtype."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    fmt = infer_channel_dimension_format(image) if input_data_format is None else ChannelDimension(input_data_format)
    channels = image.shape[get_channel_dimension_axis(image, fmt)]
    if not np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float32)
    mean = _per_channel(mean, channels, "image_mean", image.dtype)
    std = _per_channel(std, channels, "image_std", image.dtype)
    image = (image - mean) / std if fmt == ChannelDimension.LAST else ((image.T - mean) / std).T
    return to_channel_dimension_format(image, data_format, fmt) if data_format is not None else image


def center_crop(image: np.ndarray, size: Tuple[int, int], data_format: Format = None,
                input_data_format: Format = None) -> np.ndarray:
    """The central `size` = (height, width) window; an image smaller than that is zero-padded around it."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if not isinstance(size, Iterable) or len(size) != 2:
        raise ValueError(f"size must be (height, width), got {size!r}")
    fmt = infer_channel_dimension_format(image) if input_data_format is None else ChannelDimension(input_data_format)
    image = to_channel_dimension_format(image, ChannelDimension.FIRST, fmt)
    height, width = image.shape[-2:]
    crop_h, crop_w = int(size[0]), int(size[1])
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    if top < 0 or left < 0:  # pad with zeros, centred, to at least the crop size
        new_h, new_w = max(crop_h, height), max(crop_w, width)
        pad_top, pad_left = (new_h - height) // 2, (new_w - width) // 2
        padded = np.zeros_like(image, shape=image.shape[:-2] + (new_h, new_w))
        padded[..., pad_top:pad_top + height, pad_left:pad_left + width] = image
        image, top, left = padded, top + pad_top, left + pad_left
    out = image[..., max(0, top):top + crop_h, max(0, left):left + crop_w]
    return to_channel_dimension_format(out, data_format if data_format is not None else fmt, ChannelDimension.FIRST)


def convert_to_rgb(image: Any) -> Any:
    """A PIL image converted to RGB (alpha dropped, palette and grey expanded); arrays are returned as is."""
    return image.convert("RGB") if is_pil_image(image) else image


def is_scaled_image(image: np.ndarray) -> bool:
    """Whether a float image already lies in [0, 1]."""
    return image.dtype != np.uint8 and bool(np.min(image) >= 0 and np.max(image) <= 1)
