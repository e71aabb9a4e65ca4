"""IDEFICS's image encoder: a CLIP vision transformer (as 4.37's `IdeficsVisionTransformer`), on CLIP's
encoder layers (pt/clip_layers.py).

Notation: B images, C width, P patches (image_size / patch_size)^2, T = 1 + P tokens (CLS first), H heads,
D head dim.

    pixels -> patch_embedding (conv, stride = patch) + CLS -> + position embedding -> pre_layrnorm
           -> encoder.layers (pre-norm: x + attn(layer_norm1(x)); x + mlp(layer_norm2(x))) -> last_hidden_state

`post_layernorm` is kept for checkpoint compatibility: 4.37 applies it only to the pooled CLS token, which
IDEFICS never reads. Module attributes are the reference's checkpoint keys
(vision_model.encoder.layers.0.self_attn.q_proj, ...).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ...pt.clip_layers import CLIPEncoder
from ...pt.layers import resize_position_grid
from .configuration import IdeficsVisionConfig


class IdeficsVisionEmbeddings(nn.Module):
    """CLS token + patch embeddings + learned positions; with `interpolate_pos_encoding` the position grid
    is resized (bicubic) to images of another size."""

    def __init__(self, config: IdeficsVisionConfig):
        super().__init__()
        self.config = config
        self.embed_dim, self.image_size, self.patch_size = config.embed_dim, config.image_size, config.patch_size
        self.class_embedding = nn.Parameter(torch.randn(self.embed_dim))
        self.patch_embedding = nn.Conv2d(config.num_channels, self.embed_dim, kernel_size=self.patch_size,
                                         stride=self.patch_size, bias=False)
        self.num_patches = (self.image_size // self.patch_size) ** 2
        self.num_positions = self.num_patches + 1
        self.position_embedding = nn.Embedding(self.num_positions, self.embed_dim)

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        batch, _, height, width = pixel_values.shape  # (B, channels, height, width)
        if not interpolate_pos_encoding and (height != self.image_size or width != self.image_size):
            raise ValueError(f"pixel_values: Input image size ({height}*{width}) doesn't match model "
                             f"({self.image_size}*{self.image_size}). You should try to set "
                             "`interpolate_pos_encoding=True`")
        weight = self.patch_embedding.weight
        patches = self.patch_embedding(pixel_values.to(weight.dtype)).flatten(2).transpose(1, 2)  # (B, P, C)
        x = torch.cat([self.class_embedding.expand(batch, 1, -1), patches], dim=1)  # (B, T, C)
        positions = self.position_embedding.weight[None]  # (1, T0, C)
        if interpolate_pos_encoding:
            positions = self.interpolate_pos_encoding(x, height, width)
        return x + positions

    def interpolate_pos_encoding(self, embeddings: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The position table (1, 1 + P0, C) resized to this image's (1, 1 + P, C) patch grid, bicubically,
        with the reference's scale factors (the 0.1 keeps floor() from losing a patch)."""
        positions = self.position_embedding.weight[None]
        n_positions = positions.shape[1] - 1
        if embeddings.shape[1] - 1 == n_positions and height == width:
            return positions
        upcast = positions.dtype == torch.bfloat16  # bicubic has no bfloat16 kernel
        grid = resize_position_grid(positions[:, 1:].float() if upcast else positions[:, 1:], height, width,
                                    (self.patch_size, self.patch_size))  # (1, P, C)
        return torch.cat([positions[:, :1], grid.to(positions.dtype)], dim=1)


class IdeficsVisionTransformer(nn.Module):
    """pixel_values (B, channels, height, width) -> last_hidden_state (B, 1 + P, C): what IDEFICS's
    cross-attention (or its perceiver) reads. The encoder is CLIP's (pt/clip_layers.py), attention backend
    the vision config's."""

    def __init__(self, config: IdeficsVisionConfig):
        super().__init__()
        self.config = config
        self.embeddings = IdeficsVisionEmbeddings(config)
        self.pre_layrnorm = nn.LayerNorm(config.embed_dim, eps=config.layer_norm_eps)
        self.encoder = CLIPEncoder(config)
        self.post_layernorm = nn.LayerNorm(config.embed_dim, eps=config.layer_norm_eps)

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        x = self.embeddings(pixel_values, interpolate_pos_encoding=interpolate_pos_encoding)
        return self.encoder(self.pre_layrnorm(x))[0]
