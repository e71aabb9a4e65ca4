"""`IdeficsProcessor`: prompts that interleave text and images -> `input_ids`, `attention_mask`,
`pixel_values` and `image_attention_mask`, built as transformers 4.37 builds them.

Each prompt is a list of items: text (str), or an image (a PIL image, an RGB array / tensor, a
`pathlib.Path` or a "file://" URL of a local file). A web URL is refused with an error naming it:
polyformer downloads nothing but Hub files. An image becomes
`<fake_token_around_image><image><fake_token_around_image>` in the text (the leading fake token is shared
when images follow each other); the text starts with `<s>`, and `<end_of_utterance>` goes between two
consecutive texts when the tokenizer knows that token. Rows are padded on the left, images are padded
with zero images up to the batch's largest count, and `image_attention_mask[b, t, i]` is 1 when token t
of row b follows image i (the latest image before it, and no end-of-sequence token in between).

    >>> inputs = processor([["User:", image, "Describe this image.\\nAssistant:"]])
    >>> inputs["pixel_values"].shape          # (batch, images, channels, height, width)
    torch.Size([1, 1, 3, 224, 224])
"""

from __future__ import annotations

import os
from typing import Any, Callable, List, Optional, Tuple

from ...image_processing.base import BatchFeature, is_url, open_image
from ...image_processing.processor import ProcessorMixin
from ...image_processing.transforms import is_valid_image

__all__ = ["IdeficsProcessor", "IMAGE_TOKEN", "FAKE_TOKEN", "END_OF_UTTERANCE_TOKEN", "image_attention_mask"]

IMAGE_TOKEN = "<image>"
FAKE_TOKEN = "<fake_token_around_image>"
END_OF_UTTERANCE_TOKEN = "<end_of_utterance>"


def image_attention_mask(input_ids, image_token_id: int, eos_token_id: Optional[int], num_images: int):
    """(B, T, num_images) 0/1 int64 mask: token t attends to image k when the latest `<image>` token at or
    before t is the k-th of its row and no end-of-sequence token lies strictly between the two."""
    import torch

    positions = torch.arange(input_ids.shape[1]).expand_as(input_ids)
    is_image = input_ids == image_token_id
    index = is_image.long().cumsum(1) - 1  # the latest image's number (-1 before the first)
    last_image = torch.where(is_image, positions, -1).cummax(1).values
    is_eos = input_ids == eos_token_id if eos_token_id is not None else torch.zeros_like(is_image)
    last_eos = torch.where(is_eos, positions, -1).cummax(1).values
    last_eos_before = torch.cat([torch.full_like(last_eos[:, :1], -1), last_eos[:, :-1]], dim=1)
    index = torch.where((last_eos_before > last_image) | (index >= num_images), -1, index)
    mask = torch.nn.functional.one_hot(index.clamp(min=0), num_classes=num_images)
    return mask * (index >= 0).unsqueeze(-1)


class IdeficsProcessor(ProcessorMixin):
    """Wraps an `IdeficsImageProcessor` and a Llama tokenizer that has IDEFICS's tokens
    (`<fake_token_around_image>`, `<image>`, and `<end_of_utterance>` for the instruct models).

    Args:
        image_processor: an IdeficsImageProcessor.
        tokenizer: a LlamaTokenizerFast (or LlamaTokenizer) knowing `<image>` and `<fake_token_around_image>`.
        image_size (224): kept for compatibility; the image processor's `image_size` is used.
        add_end_of_utterance_token (None): the default of `__call__`'s argument, saved in processor_config.json when
            given; None means "when the tokenizer's additional special tokens include `<end_of_utterance>`".
            (4.37 ignores this argument.)
    """

    attributes = ["image_processor", "tokenizer"]
    image_processor_class = "IdeficsImageProcessor"
    tokenizer_class = "LlamaTokenizerFast"

    def __init__(self, image_processor, tokenizer=None, image_size: int = 224,
                 add_end_of_utterance_token: Optional[bool] = None, **kwargs: Any):
        if image_processor is None:
            raise ValueError("IdeficsProcessor needs an image_processor (an IdeficsImageProcessor)")
        if tokenizer is None:
            raise ValueError("IdeficsProcessor needs a tokenizer (a LlamaTokenizerFast with IDEFICS's tokens)")
        super().__init__(image_processor, tokenizer, **kwargs)
        vocab = tokenizer.get_vocab()
        missing = [token for token in (IMAGE_TOKEN, FAKE_TOKEN) if token not in vocab]
        if missing:
            raise ValueError(f"IdeficsProcessor: the tokenizer lacks {missing}; add IDEFICS's tokens with "
                             "tokenizer.add_special_tokens({'additional_special_tokens': ['<fake_token_around_image>',"
                             " '<image>', '<end_of_utterance>']})")
        self.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
        self.default_image_dims = (image_processor.image_num_channels, image_processor.image_size,
                                   image_processor.image_size)
        self.tokenizer_was_trained_with_end_of_utterance_token = (
            END_OF_UTTERANCE_TOKEN in tokenizer.special_tokens_map.get("additional_special_tokens", []))
        if add_end_of_utterance_token is not None:  # kept (and saved in processor_config.json) only when given
            self.add_end_of_utterance_token = add_end_of_utterance_token

    def __call__(self, prompts, padding=False, truncation=None, max_length: Optional[int] = None,
                 transform: Optional[Callable] = None, add_eos_token: bool = False,
                 add_end_of_utterance_token: Optional[bool] = None, debug: bool = False,
                 return_tensors: Optional[str] = "pt") -> BatchFeature:
        """Model inputs for one prompt (a list of text and image items) or a batch of them (a list of lists).

        Args:
            prompts: see the module docstring; a single str is one prompt of one text.
            padding, truncation, max_length: passed to the tokenizer; the rows are then left-padded to the longest,
                and truncation drops the images whose `<image>` token was cut. Keep padding=False (the default): as
                in 4.37, the attention mask marks only what the processor pads, so pad tokens the tokenizer adds
                (padding=True / "max_length") count as text.
            transform: a callable applied to each image instead of the image processor's steps (training).
            add_eos_token (False): end each prompt with the tokenizer's eos token.
            add_end_of_utterance_token (None): put `<end_of_utterance>` between consecutive texts; None: the
                processor's default (see the class).
            debug (False): print each prompt's full text.
            return_tensors ("pt"): "pt" (None too, as in 4.37), or "np" / "tf" / "jax".
        Returns:
            BatchFeature with input_ids (B, T), attention_mask (B, T), pixel_values (B, N, C, H, W) and
            image_attention_mask (B, T, N), N the largest image count (at least 1).
        """
        import torch

        if add_end_of_utterance_token is None:
            add_end_of_utterance_token = getattr(self, "add_end_of_utterance_token", None)
        if add_end_of_utterance_token is None:
            add_end_of_utterance_token = self.tokenizer_was_trained_with_end_of_utterance_token
        texts, images = [], []
        for index, sample in enumerate(self._batch(prompts)):
            text, objects = self._build_prompt(sample, index, add_eos_token, add_end_of_utterance_token)
            if debug:
                print(f"full_text={text!r}")
            try:
                images.append(self.image_processor(objects, transform=transform))
            except (ValueError, TypeError) as err:  # say which prompt held the image
                raise (TypeError if isinstance(err, TypeError) else ValueError)(f"prompts[{index}]: {err}") from err
            texts.append(text)

        encoded = self.tokenizer(text=texts, add_special_tokens=False, padding=padding, truncation=truncation,
                                 max_length=max_length)["input_ids"]
        length = max(len(ids) for ids in encoded)
        num_images = max(1, max(len(batch) for batch in images))
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None and any(len(ids) < length for ids in encoded):
            raise ValueError("IdeficsProcessor: prompts of different lengths need a pad token; set "
                             "tokenizer.pad_token (IDEFICS uses '<unk>')")
        rows, masks, pixels = [], [], []
        for ids, batch in zip(encoded, images):
            rows.append([pad_id] * (length - len(ids)) + list(ids))
            masks.append([0] * (length - len(ids)) + [1] * len(ids))
            kept = batch[:min(rows[-1].count(self.image_token_id), num_images)]
            if len(kept):
                padded = torch.zeros(num_images, *kept.shape[1:])
                padded[:len(kept)] = kept
            else:
                padded = torch.zeros(num_images, *self.default_image_dims)
            pixels.append(padded)
        input_ids = torch.tensor(rows)
        if sum(len(batch) for batch in images):
            cross = image_attention_mask(input_ids, self.image_token_id, self.tokenizer.eos_token_id, num_images)
        else:
            cross = torch.zeros(*input_ids.shape, 1, dtype=torch.bool)
        data = {"input_ids": input_ids, "attention_mask": torch.tensor(masks), "pixel_values": torch.stack(pixels),
                "image_attention_mask": cross}
        if return_tensors in (None, "pt"):
            return BatchFeature(data)
        return BatchFeature({key: value.numpy() for key, value in data.items()}, tensor_type=return_tensors)

    @staticmethod
    def _batch(prompts) -> List[list]:
        """The list of prompts: a batch stays one, a single prompt (a list of items, or one str) is wrapped."""
        if isinstance(prompts, str):
            return [[prompts]]
        if not isinstance(prompts, (list, tuple)) or not prompts:
            raise TypeError(f"prompts must be a non-empty list of text and images, or a list of such lists; got "
                            f"{type(prompts).__name__ if prompts else prompts!r}")
        if not any(isinstance(item, (list, tuple)) for item in prompts):
            return [list(prompts)]
        for index, sample in enumerate(prompts):
            if not isinstance(sample, (list, tuple)):
                raise TypeError(f"prompts[{index}] must be a list of text and images (a batch holds only lists), "
                                f"got {type(sample).__name__}")
        return [list(sample) for sample in prompts]

    def _build_prompt(self, sample: list, index: int, add_eos_token: bool,
                      add_end_of_utterance_token: bool) -> Tuple[str, list]:
        """The full text of one prompt and its images, in order."""
        text = f"{self.tokenizer.bos_token}"
        images: list = []
        last_was_image = False
        for position, item in enumerate(sample):
            where = f"prompts[{index}][{position}]"
            last_was_text = position > 0 and not last_was_image
            image = self._as_image(item, where)
            if image is None:
                if add_end_of_utterance_token and last_was_text:
                    text += END_OF_UTTERANCE_TOKEN
                text += item.strip(" ")
                last_was_image = False
            else:
                text += IMAGE_TOKEN + FAKE_TOKEN if last_was_image else FAKE_TOKEN + IMAGE_TOKEN + FAKE_TOKEN
                images.append(image)
                last_was_image = True
        if add_eos_token:
            text += self.tokenizer.eos_token
        if text.count(IMAGE_TOKEN) != len(images):
            raise ValueError(f"prompts[{index}] has {len(images)} image(s) but its text would hold "
                             f"{text.count(IMAGE_TOKEN)} {IMAGE_TOKEN} tokens: {IMAGE_TOKEN} is written by the "
                             "processor for each image; remove it from the text items")
        return text, images

    @staticmethod
    def _as_image(item: Any, where: str):
        """The image an item stands for, or None when it is text."""
        if isinstance(item, str):
            stripped = item.strip(" ")
            if is_url(stripped) or stripped.startswith("file://"):
                return open_image(stripped, where)
            return None
        if isinstance(item, os.PathLike):
            return open_image(item, where)
        if is_valid_image(item):
            return item
        raise TypeError(f"{where} must be text (str), an image (PIL image, array or tensor) or a local image path "
                        f"(pathlib.Path), got {type(item).__name__}")
