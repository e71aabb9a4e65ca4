"""`CLIPProcessor`: a CLIP tokenizer and a `CLIPImageProcessor` in one call (GroupViT's processor too).

    >>> processor = CLIPProcessor.from_pretrained("nvidia/groupvit-gcc-yfcc")
    >>> inputs = processor(text=["a photo of a cat", "a photo of a dog"], images=image, return_tensors="pt",
    ...                    padding=True)
    >>> sorted(inputs)
    ['attention_mask', 'input_ids', 'pixel_values']
"""

from __future__ import annotations

import inspect
from typing import Any

from .image_processing import CLIPImageProcessor
from ...image_processing.processor import ProcessorMixin
from ...tokenization.encoding import BatchEncoding

__all__ = ["CLIPProcessor"]

_IMAGE_ARGUMENTS = frozenset(inspect.signature(CLIPImageProcessor.preprocess).parameters) - {"self", "images",
                                                                                               "kwargs"}


class CLIPProcessor(ProcessorMixin):
    """Wraps a `CLIPImageProcessor` and a `CLIPTokenizer` / `CLIPTokenizerFast`.

    Args:
        image_processor: a CLIPImageProcessor (`feature_extractor=` is accepted as its old name).
        tokenizer: a CLIP tokenizer.
    """

    attributes = ["image_processor", "tokenizer"]
    image_processor_class = "CLIPImageProcessor"
    tokenizer_class = ("CLIPTokenizer", "CLIPTokenizerFast")

    def __init__(self, image_processor=None, tokenizer=None, **kwargs: Any):
        image_processor = kwargs.pop("feature_extractor", None) if image_processor is None else image_processor
        if image_processor is None:
            raise ValueError("CLIPProcessor needs an image_processor (a CLIPImageProcessor)")
        if tokenizer is None:
            raise ValueError("CLIPProcessor needs a tokenizer (a CLIPTokenizer or CLIPTokenizerFast)")
        super().__init__(image_processor, tokenizer, **kwargs)

    def __call__(self, text=None, images=None, return_tensors=None, **kwargs: Any) -> BatchEncoding:
        """Tokenize `text` and / or preprocess `images` (at least one of them).

        Keyword arguments that `CLIPImageProcessor.preprocess` takes (do_resize, size, crop_size, ...) go
        to the image processor, the others (padding, truncation, max_length, ...) to the tokenizer.
        Returns a BatchEncoding with `input_ids` and `attention_mask` when there is text, and `pixel_values`
        when there are images.
        """
        if text is None and images is None:
            raise ValueError("CLIPProcessor needs text=..., images=... or both; both are None")
        image_kwargs = {key: kwargs.pop(key) for key in list(kwargs) if key in _IMAGE_ARGUMENTS}
        if images is not None:
            pixel_values = self.image_processor(images, return_tensors=return_tensors, **image_kwargs)["pixel_values"]
        if text is None:
            return BatchEncoding({"pixel_values": pixel_values}, tensor_type=return_tensors)
        encoding = self.tokenizer(text, return_tensors=return_tensors, **kwargs)
        if images is not None:
            encoding["pixel_values"] = pixel_values
        return encoding

    @property
    def feature_extractor(self) -> CLIPImageProcessor:
        """The image processor (its older name)."""
        return self.image_processor

    @property
    def feature_extractor_class(self) -> str:
        return self.image_processor_class
