"""Small building blocks shared by the PyTorch families: activations, sinusoidal tables, the bicubic resize of
a position grid, the layer loop."""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def _gelu_new(x: torch.Tensor) -> torch.Tensor:
    """GPT-2's tanh approximation of GELU, written as the reference writes it."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


ACTIVATIONS: dict = {
    "gelu": F.gelu,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "gelu_new": _gelu_new,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


def activation(name_or_fn) -> Callable[[torch.Tensor], torch.Tensor]:
    """An activation by its config name ("gelu", "relu", "silu", "gelu_new", ...) or a callable."""
    if callable(name_or_fn):
        return name_or_fn
    try:
        return ACTIVATIONS[name_or_fn]
    except KeyError:
        raise ValueError(f"activation {name_or_fn!r} is not supported; choose one of {sorted(ACTIVATIONS)}") from None


def sinusoidal_table(n_positions: int, dim: int) -> torch.Tensor:
    """(n_positions, dim) table: sin on even columns, cos on odd, angle pos / 10000^(2*(j//2)/dim)."""
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)
    angles = pos / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.empty(n_positions, dim, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles[:, 0::2])
    table[:, 1::2] = torch.cos(angles[:, 1::2])
    return table.float()


class SinusoidalEmbedding(nn.Embedding):
    """A fixed (not trained) sin/cos position table with nn.Embedding's interface and weight name."""

    def __init__(self, num_positions: int, dim: int):
        super().__init__(num_positions, dim)
        self.weight.requires_grad_(False)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        self.weight.copy_(sinusoidal_table(self.num_embeddings, self.embedding_dim))


def resize_position_grid(table: torch.Tensor, height: int, width: int, patch_size: Tuple[int, int]) -> torch.Tensor:
    """A square grid of learnt patch positions (1, P0, C) resized bicubically to the patch grid of a
    height x width image, (1, P, C), as 4.37's ViT-style `interpolate_pos_encoding` does it: scale factors
    (patches + 0.1) / side (the 0.1 keeps floor() from losing a patch)."""
    side, width_c = math.sqrt(table.shape[1]), table.shape[-1]
    grid = table.reshape(1, int(side), int(side), width_c).permute(0, 3, 1, 2)  # (1, C, side, side)
    rows, cols = height // patch_size[0] + 0.1, width // patch_size[1] + 0.1
    grid = F.interpolate(grid, scale_factor=(rows / side, cols / side), mode="bicubic", align_corners=False)
    if int(rows) != grid.shape[-2] or int(cols) != grid.shape[-1]:
        raise ValueError(f"Number of patches for images ({int(rows), int(cols)}) don't match the "
                         f"shape of position embedding ({grid.shape[-2], grid.shape[-1]})")
    return grid.permute(0, 2, 3, 1).reshape(1, -1, width_c)  # (1, P, C)


def chunked(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, chunk_size: int, dim: int = 1) -> torch.Tensor:
    """Apply a position-wise `fn` over `x` in chunks of `chunk_size` along `dim` (0: all at once)."""
    if chunk_size <= 0 or x.shape[dim] <= chunk_size:
        return fn(x)
    return torch.cat([fn(part) for part in x.split(chunk_size, dim=dim)], dim=dim)


def run_layers(
    layers: Sequence[nn.Module],
    x: torch.Tensor,
    *args,
    head_mask: Optional[Sequence[Optional[torch.Tensor]]] = None,
    output_hidden_states: bool = False,
    output_attentions: bool = False,
    gradient_checkpointing: bool = False,
) -> Tuple[torch.Tensor, Optional[Tuple[torch.Tensor, ...]], Optional[Tuple[torch.Tensor, ...]]]:
    """Run a stack of blocks, each called as `layer(x, *args, head_mask_i, output_attentions)` and
    returning `(x, attention_weights_or_None)`.

    Returns (x, hidden_states, attentions): hidden_states is the input plus each layer's output when
    asked for, attentions one entry per layer when asked for, else None.
    """
    hidden_states = (x,) if output_hidden_states else None
    attentions = () if output_attentions else None
    for i, layer in enumerate(layers):
        layer_head_mask = None if head_mask is None else head_mask[i]
        if gradient_checkpointing and torch.is_grad_enabled():
            x, weights = checkpoint(layer, x, *args, layer_head_mask, output_attentions, use_reentrant=False)
        else:
            x, weights = layer(x, *args, layer_head_mask, output_attentions)
        if output_hidden_states:
            hidden_states += (x,)
        if output_attentions:
            attentions += (weights,)
    return x, hidden_states, attentions
