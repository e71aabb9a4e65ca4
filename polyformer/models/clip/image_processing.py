"""`CLIPImageProcessor`: CLIP's (and GroupViT's) image preprocessing, as transformers 4.37 does it.

    convert to RGB -> resize (shortest edge, bicubic) -> center crop -> rescale (1/255) -> normalize
    (OpenAI CLIP mean / std) -> channels first

    >>> processor = CLIPImageProcessor()            # 224 x 224 crops of images resized to 224 on the short side
    >>> processor(image, return_tensors="pt")["pixel_values"].shape
    torch.Size([1, 3, 224, 224])
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Union

import numpy as np

from ...image_processing.base import BaseImageProcessor, BatchFeature, get_size_dict
from ...image_processing.transforms import (OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, ChannelDimension, PILImageResampling,
                                            convert_to_rgb, get_resize_output_image_size, infer_channel_dimension_format,
                                            is_scaled_image, make_list_of_images, resize, to_channel_dimension_format,
                                            to_numpy_array)

__all__ = ["CLIPImageProcessor"]

logger = logging.getLogger(__name__)


class CLIPImageProcessor(BaseImageProcessor):
    """CLIP's image processor. Every argument is a default that `preprocess` (or calling the processor)
    can override.

    Args:
        do_resize (True): resize so the shorter edge is `size["shortest_edge"]` (the longer keeps the aspect
            ratio, rounded down), or to exactly `size["height"]` x `size["width"]`.
        size ({"shortest_edge": 224}): an int n means {"shortest_edge": n}.
        resample (bicubic): the PIL filter used to resize.
        do_center_crop (True), crop_size ({"height": 224, "width": 224}; an int n means n x n): crop the
            centre (an image smaller than the crop is zero-padded).
        do_rescale (True), rescale_factor (1/255): multiply the pixel values.
        do_normalize (True), image_mean / image_std (OpenAI CLIP's): `(x - mean) / std` per channel.
        do_convert_rgb (True): convert PIL images to RGB first (alpha dropped, grey and palette expanded).
        Other keyword arguments are kept as attributes and saved in preprocessor_config.json.
    """

    model_input_names = ["pixel_values"]

    def __init__(self, do_resize: bool = True, size: Optional[Dict[str, int]] = None,
                 resample: int = PILImageResampling.BICUBIC, do_center_crop: bool = True,
                 crop_size: Optional[Dict[str, int]] = None, do_rescale: bool = True,
                 rescale_factor: Union[int, float] = 1 / 255, do_normalize: bool = True,
                 image_mean: Optional[Union[float, List[float]]] = None,
                 image_std: Optional[Union[float, List[float]]] = None, do_convert_rgb: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        size = get_size_dict({"shortest_edge": 224} if size is None else size, default_to_square=False)
        self.do_resize = do_resize
        self.size = size
        self.resample = resample
        self.do_center_crop = do_center_crop
        self.crop_size = get_size_dict({"height": 224, "width": 224} if crop_size is None else crop_size,
                                       default_to_square=True, param_name="crop_size")
        self.do_rescale = do_rescale
        self.rescale_factor = rescale_factor
        self.do_normalize = do_normalize
        self.image_mean = OPENAI_CLIP_MEAN if image_mean is None else image_mean
        self.image_std = OPENAI_CLIP_STD if image_std is None else image_std
        self.do_convert_rgb = do_convert_rgb
        if "use_square_size" in kwargs:  # older configs: a square of the shortest edge
            self.size = {"height": size["shortest_edge"], "width": size["shortest_edge"]}

    def resize(self, image: np.ndarray, size: Dict[str, int], resample: int = PILImageResampling.BICUBIC,
               data_format=None, input_data_format=None, **kwargs: Any) -> np.ndarray:
        """Resize so the shorter edge is size["shortest_edge"], or to size["height"] x size["width"]."""
        if "shortest_edge" in size:
            target, square = size["shortest_edge"], False
        elif "height" in size and "width" in size:
            target, square = (size["height"], size["width"]), True
        else:
            raise ValueError(f"size must have the key 'shortest_edge' or the keys 'height' and 'width', got {size}")
        output_size = get_resize_output_image_size(image, target, default_to_square=square,
                                                   input_data_format=input_data_format)
        return resize(image, output_size, resample=resample, data_format=data_format,
                      input_data_format=input_data_format, **kwargs)

    def preprocess(self, images: Any, do_resize: Optional[bool] = None, size: Optional[Dict[str, int]] = None,
                   resample: Optional[int] = None, do_center_crop: Optional[bool] = None, crop_size=None,
                   do_rescale: Optional[bool] = None, rescale_factor: Optional[float] = None,
                   do_normalize: Optional[bool] = None, image_mean=None, image_std=None,
                   do_convert_rgb: Optional[bool] = None, return_tensors=None,
                   data_format: Union[str, ChannelDimension, None] = ChannelDimension.FIRST,
                   input_data_format: Union[str, ChannelDimension, None] = None, **kwargs: Any) -> BatchFeature:
        """`pixel_values` of one image or a batch (PIL images, or arrays / tensors HWC or CHW with pixel values
        in [0, 255]; set do_rescale=False for values in [0, 1]). Each argument left None takes the
        processor's value. `return_tensors` None gives a list of arrays, "np" / "pt" / "tf" / "jax" one batch.
        `data_format` is the output layout (channels first by default; None keeps the input's), and
        `input_data_format` the input's (inferred from the first image when None)."""
        pick = lambda value, default: default if value is None else value  # noqa: E731
        do_resize, resample = pick(do_resize, self.do_resize), pick(resample, self.resample)
        size = get_size_dict(pick(size, self.size), param_name="size", default_to_square=False)
        do_center_crop = pick(do_center_crop, self.do_center_crop)
        crop_size = get_size_dict(pick(crop_size, self.crop_size), param_name="crop_size", default_to_square=True)
        do_rescale, rescale_factor = pick(do_rescale, self.do_rescale), pick(rescale_factor, self.rescale_factor)
        do_normalize = pick(do_normalize, self.do_normalize)
        image_mean, image_std = pick(image_mean, self.image_mean), pick(image_std, self.image_std)
        do_convert_rgb = pick(do_convert_rgb, self.do_convert_rgb)
        if kwargs:
            logger.debug("%s.preprocess ignores %s", type(self).__name__, sorted(kwargs))

        images = make_list_of_images(images)
        if do_rescale and rescale_factor is None:
            raise ValueError("rescale_factor must be given when do_rescale is True")
        if do_normalize and (image_mean is None or image_std is None):
            raise ValueError("image_mean and image_std must be given when do_normalize is True")
        if do_convert_rgb:
            images = [convert_to_rgb(image) for image in images]
        images = [to_numpy_array(image) for image in images]
        for i, image in enumerate(images):
            if image.ndim != 3:
                raise ValueError(f"images[{i}] has shape {image.shape}: an image needs 3 dimensions (height, width, "
                                 "channels or channels, height, width); pass do_convert_rgb=True for a grey PIL image")
        if do_rescale and is_scaled_image(images[0]):
            logger.warning("the images look already rescaled to [0, 1]; pass do_rescale=False if so")
        if input_data_format is None:
            input_data_format = infer_channel_dimension_format(images[0])
        if do_resize:
            images = [self.resize(image, size, resample, input_data_format=input_data_format) for image in images]
        if do_center_crop:
            images = [self.center_crop(image, crop_size, input_data_format=input_data_format) for image in images]
        if do_rescale:
            images = [self.rescale(image, rescale_factor, input_data_format=input_data_format) for image in images]
        if do_normalize:
            images = [self.normalize(image, image_mean, image_std, input_data_format=input_data_format)
                      for image in images]
        images = [to_channel_dimension_format(image, data_format, input_channel_dim=input_data_format)
                  for image in images]
        return BatchFeature({"pixel_values": images}, tensor_type=return_tensors)
