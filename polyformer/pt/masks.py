"""Attention masks, built once per forward and shared by every layer.

Notation: B batch, T query length, S key length.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch


def padding_mask(attention_mask: Optional[torch.Tensor], dtype: torch.dtype) -> Optional[torch.Tensor]:
    """A (B, S) 0/1 mask -> the additive (B, 1, 1, S) mask `attend` takes for a bidirectional encoder, 0 where
    kept and dtype-min where padded; None when nothing is masked, so SDPA can take its fast path.
    (Every backend takes this one form, flash-attn too.)
    """
    if attention_mask is None or (not torch.jit.is_tracing() and bool(attention_mask.all())):
        return None  # (an ONNX export traces the masked path: the shortcut depends on the values)
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


def causal_mask(
    attention_mask: Optional[torch.Tensor],
    query_length: int,
    seen: int,
    dtype: torch.dtype,
    *,
    device=None,
    mask_then_scale_dim: Optional[int] = None,
    stack: bool = False,
    unmask_unattended: bool = False,
) -> Tuple[Optional[torch.Tensor], bool]:
    """The additive mask of a decoder forward: query t (0 <= t < T, at position seen + t) may see key s
    (0 <= s < S = seen + T) when s <= seen + t and attention_mask[:, s] is 1.

    Returns (additive mask, is_causal) for `attend`: (None, True) when plain causal attention over T == S
    suffices, (None, False) when nothing is masked (one new token, no padding), otherwise an additive
    (B|1, 1, T, S) float mask (0 kept, large negative masked) and False.

    The reference fills a masked key differently per family, which decides what fully masked rows
    (the padding of a left-padded prompt) compute; the keywords reproduce it:
      mask_then_scale_dim: D for GPT-J, which masks the scores before dividing them by sqrt(D), so that its
              future keys hold dtype-min / sqrt(D) (float32 arithmetic); None: dtype-min.
      stack: a padded key gets dtype-min added on top (GPT-J, CodeGen: future and padded gives -inf)
             instead of being set to dtype-min once (Llama).
      unmask_unattended: query rows that see no key at all, in a batch row with some real token, see
             every key instead (Llama's SDPA path).
    """
    min_value = torch.finfo(dtype).min
    key_length = seen + query_length
    if attention_mask is not None and not torch.jit.is_tracing() and bool(attention_mask.all()):
        attention_mask = None
    if attention_mask is None and (query_length == 1 or seen == 0):
        return None, query_length > 1
    device = attention_mask.device if attention_mask is not None else device
    future_value = min_value
    if mask_then_scale_dim is not None:
        scale = torch.tensor(mask_then_scale_dim, dtype=torch.float32).sqrt()
        future_value = (torch.tensor(min_value, dtype=torch.float32) / scale).item()
    position = torch.arange(key_length, device=device)
    is_future = position[None, :] > (position[seen:, None])  # (T, S)
    mask = torch.zeros(is_future.shape, dtype=dtype, device=device).masked_fill(is_future, future_value)[None, None]
    if attention_mask is None:
        return mask, False
    padded = (attention_mask == 0)[:, None, None, :]  # (B, 1, 1, S)
    if stack:
        mask = mask + additive(~padded, dtype)  # (B, 1, T, S)
    else:
        mask = mask.masked_fill(padded, min_value)
    if unmask_unattended:
        unattended = (is_future[None, None] | padded).all(-1, keepdim=True) & ~padded.all(-1, keepdim=True)
        mask = mask.masked_fill(unattended, 0.0)
    return mask, False
