"""What IDEFICS's text layers need to know about the images of one forward: the image states laid out for
cross-attention, which images each token may see (image_attention_mask), and the checks of the image inputs.

Notation: B batch, T new tokens, N images per row, L tokens per image, E the vision width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ...pt.masks import additive

IMAGE_INPUTS = ("pixel_values", "image_encoder_embeddings", "perceiver_embeddings")


@dataclass
class ImageContext:
    """One forward's images, shared by every gated cross-attention layer (`DecoderStep.context["images"]`)."""

    states: torch.Tensor  # (B, N*L, E): image after image, L tokens each
    mask: Optional[torch.Tensor]  # additive (B, 1, T, N*L), or None when every token sees every image
    gate: Optional[torch.Tensor]  # bool (B, T, 1): the token sees at least one image; None when all do


def image_context(images: torch.Tensor, image_attention_mask: Optional[torch.Tensor], batch: int, length: int,
                  dtype: torch.dtype) -> ImageContext:
    """images (B, N, L, E) and image_attention_mask (B, T, N) (None: all ones) -> ImageContext."""
    n_images, per_image = images.shape[1], images.shape[2]
    states = images.reshape(batch, n_images * per_image, images.shape[-1])
    if image_attention_mask is None:
        return ImageContext(states, None, None)
    expected = (batch, length, n_images)
    if not isinstance(image_attention_mask, torch.Tensor) or image_attention_mask.dim() != 3:
        shape = tuple(image_attention_mask.shape) if isinstance(image_attention_mask, torch.Tensor) else \
            type(image_attention_mask).__name__
        raise ValueError(f"image_attention_mask must have shape (batch_size, sequence_length, num_images) = "
                         f"{expected}, got {shape}")
    if image_attention_mask.shape[-1] != n_images:
        raise ValueError(f"image_attention_mask names {image_attention_mask.shape[-1]} images per row (its last "
                         f"dimension) but {n_images} images per row are given (pixel_values / image embeddings)")
    if tuple(image_attention_mask.shape) != expected:
        raise ValueError(f"image_attention_mask must have shape (batch_size, sequence_length, num_images) = "
                         f"{expected} (one row per new token), got {tuple(image_attention_mask.shape)}")
    keep = image_attention_mask.to(states.device) != 0  # (B, T, N)
    if bool(keep.all()):
        return ImageContext(states, None, None)
    mask = additive(keep.repeat_interleave(per_image, dim=-1)[:, None], dtype)  # (B, 1, T, N*L)
    return ImageContext(states, mask, keep.any(-1, keepdim=True))


def image_rows(image_attention_mask: Optional[torch.Tensor], start: int, end: int) -> Optional[torch.Tensor]:
    """Rows start .. end - 1 of a prompt's image_attention_mask (B, T0, N); rows past the prompt repeat its
    last one (what the reference gives every generated token)."""
    if image_attention_mask is None:
        return None
    prompt = image_attention_mask.shape[1]
    if end <= prompt:
        return image_attention_mask[:, start:end]
    tail = image_attention_mask[:, -1:].expand(-1, end - max(start, prompt), -1)
    return tail if start >= prompt else torch.cat([image_attention_mask[:, start:], tail], dim=1)


def check_pixel_values(pixel_values, num_channels: int) -> None:
    """pixel_values: a (batch_size, num_images, num_channels, height, width) tensor."""
    if not isinstance(pixel_values, torch.Tensor) or pixel_values.dtype == torch.bool:
        raise TypeError(f"pixel_values must be a torch.Tensor of pixel values, got {type(pixel_values).__name__}")
    if pixel_values.dim() != 5:
        raise ValueError("pixel_values must have 5 dimensions (batch_size, num_images, num_channels, height, width), "
                         f"got shape {tuple(pixel_values.shape)}")
    if pixel_values.shape[2] != num_channels:
        raise ValueError(f"pixel_values has {pixel_values.shape[2]} channels (dimension 2 of (batch_size, num_images, "
                         f"num_channels, height, width)); the vision encoder takes num_channels={num_channels}")


def check_image_embeddings(embeddings, width: int, name: str) -> None:
    """image_encoder_embeddings / perceiver_embeddings: a (batch_size, num_images, length, width) tensor."""
    if not isinstance(embeddings, torch.Tensor) or not embeddings.is_floating_point():
        raise TypeError(f"{name} must be a floating-point torch.Tensor")
    if embeddings.dim() != 4 or embeddings.shape[-1] != width:
        raise ValueError(f"{name} must have shape (batch_size, num_images, sequence_length, {width}) (the vision "
                         f"embed_dim), got {tuple(embeddings.shape)}")
