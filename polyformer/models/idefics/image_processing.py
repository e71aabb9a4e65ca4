"""`IdeficsImageProcessor`: IDEFICS's image preprocessing, as transformers 4.37 does it.

    RGB over a white background (transparency composited) -> resize to image_size x image_size (bicubic)
    -> rescale (1/255) -> normalize -> channels first -> one float32 torch tensor (N, C, S, S)

    >>> processor = IdeficsImageProcessor(image_size=224)
    >>> processor([image_a, image_b]).shape
    torch.Size([2, 3, 224, 224])
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Union

import numpy as np
import PIL.Image

from ...image_processing.base import BaseImageProcessor, BatchFeature
from ...image_processing.transforms import (ChannelDimension, PILImageResampling, is_pil_image, make_list_of_images,
                                            resize, to_channel_dimension_format, to_numpy_array)

__all__ = ["IdeficsImageProcessor", "IDEFICS_STANDARD_MEAN", "IDEFICS_STANDARD_STD", "composite_on_white"]

IDEFICS_STANDARD_MEAN = [0.48145466, 0.4578275, 0.40821073]
IDEFICS_STANDARD_STD = [0.26862954, 0.26130258, 0.27577711]


def composite_on_white(image: PIL.Image.Image) -> PIL.Image.Image:
    """An RGB image: RGB ones as they are, others (RGBA, LA, P with transparency, L, ...) drawn over white."""
    if image.mode == "RGB":
        return image
    rgba = image.convert("RGBA")
    background = PIL.Image.new("RGBA", rgba.size, (255, 255, 255))
    return PIL.Image.alpha_composite(background, rgba).convert("RGB")


def _rgb_array(image: Any, index: int) -> np.ndarray:
    """A PIL image composited on white, or an array / tensor that already has 3 channels (first or last)."""
    if is_pil_image(image):
        return np.array(composite_on_white(image))
    array = to_numpy_array(image)
    if array.ndim == 3 and 3 in (array.shape[0], array.shape[-1]):
        return array
    raise ValueError(f"images[{index}] has shape {tuple(array.shape)}: an IDEFICS image array must be RGB, "
                     "(height, width, 3) or (3, height, width); pass other images as PIL images")


class IdeficsImageProcessor(BaseImageProcessor):
    """IDEFICS's image processor.

    Args:
        image_size (224): images are resized to image_size x image_size.
        image_mean, image_std (None): per-channel normalization. None means IDEFICS's standard values
            (OpenAI CLIP's), which the docstring of 4.37 promises; its code normalizes with None and returns
            NaN instead. None is saved as null, as the reference saves it.
        image_num_channels (3): channels of the images (the processor pads missing images with it).
    """

    model_input_names = ["pixel_values"]

    def __init__(self, image_size: int = 224, image_mean: Optional[Union[float, List[float]]] = None,
                 image_std: Optional[Union[float, List[float]]] = None, image_num_channels: Optional[int] = 3,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.image_size = image_size
        self.image_num_channels = image_num_channels
        self.image_mean = image_mean
        self.image_std = image_std

    def preprocess(self, images: Any, image_num_channels: Optional[int] = 3, image_size: Optional[int] = None,
                   image_mean=None, image_std=None, transform: Optional[Callable] = None, **kwargs: Any):
        """A float32 torch tensor (N, 3, image_size, image_size) from one image or a list of them (PIL images,
        or RGB arrays / tensors with values in [0, 255]); an empty list gives []. `transform`, when given,
        replaces all of it: each image goes through `transform` (e.g. a torchvision pipeline) and the
        results are stacked."""
        image_size = self.image_size if image_size is None else image_size
        image_mean = image_mean if image_mean is not None else self.image_mean
        image_std = image_std if image_std is not None else self.image_std
        image_mean = IDEFICS_STANDARD_MEAN if image_mean is None else image_mean
        image_std = IDEFICS_STANDARD_STD if image_std is None else image_std
        if isinstance(images, list) and not images:
            return []
        images = make_list_of_images(images)
        if transform is not None:
            import torch

            return torch.stack([transform(image) for image in images])
        arrays = [_rgb_array(image, i) for i, image in enumerate(images)]
        arrays = [resize(array, (image_size, image_size), resample=PILImageResampling.BICUBIC) for array in arrays]
        arrays = [self.rescale(array, 1 / 255) for array in arrays]
        arrays = [self.normalize(array, image_mean, image_std) for array in arrays]
        arrays = [to_channel_dimension_format(array, ChannelDimension.FIRST) for array in arrays]
        return BatchFeature({"pixel_values": arrays}, tensor_type="pt")["pixel_values"]
