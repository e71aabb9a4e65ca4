"""Attention masks, built once per forward and shared by every layer.

Notation: B batch, T query length, S key length.
"""

from __future__ import annotations

from typing import Optional

import torch


def padding_mask(attention_mask: Optional[torch.Tensor], dtype: torch.dtype, impl: str = "sdpa") -> Optional[torch.Tensor]:
    """A (B, S) 0/1 mask -> what `attend` takes for a bidirectional encoder.

    None when nothing is masked, so SDPA can take its fast path; for "flash_attention_2" the (B, S)
    mask itself; otherwise an additive (B, 1, 1, S) mask, 0 where kept and dtype-min where padded.
    """
    if attention_mask is None or bool(attention_mask.all()):
        return None
    if impl == "flash_attention_2":
        return attention_mask
    return additive(attention_mask[:, None, None, :], dtype)


def additive(keep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """0/1 (or bool) keep-mask -> additive float mask (0 kept, dtype-min dropped)."""
    return torch.zeros(keep.shape, dtype=dtype, device=keep.device).masked_fill(keep == 0, torch.finfo(dtype).min)


class Packing:
    """The real tokens of a right- or left-padded batch, packed into rows (N, ...) so that
    position-wise layers (linear, LayerNorm, feed-forward) skip the padding.

    Attention still needs the (B, T) layout: `pad` scatters rows back (zeros at padding, which the
    attention mask hides), `pack` gathers them again. Only valid where no caller reads padded
    positions' outputs.
    """

    def __init__(self, attention_mask: torch.Tensor):
        self.batch, self.length = attention_mask.shape
        self.rows = attention_mask.reshape(-1).nonzero().squeeze(1)  # (N,) indices into B*T

    def pack(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, ...) -> (N, ...)"""
        return x.reshape(self.batch * self.length, *x.shape[2:]).index_select(0, self.rows)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """(N, ...) -> (B, T, ...), zeros at padded positions."""
        full = x.new_zeros(self.batch * self.length, *x.shape[1:]).index_copy_(0, self.rows, x)
        return full.view(self.batch, self.length, *x.shape[1:])
