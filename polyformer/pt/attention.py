"""The one attention function every PyTorch model calls.

Notation: B batch, T query length, S key length, H query heads, K key/value heads, D head dim, C width.

`attend` picks the backend from the model's `attn_implementation`:
- "sdpa": `torch.nn.functional.scaled_dot_product_attention` (default), except for a single query row
  (one decoding step), where the explicit product is faster on CPU (SDPA's kernel tiles over queries:
  2.1 ms a layer for 8 rows x 256 keys in bfloat16, against a few matrix-vector products);
- "eager": explicit softmax(q k^T) v, also used whenever attention weights or a head mask are asked
  for (as the reference's SDPA classes fall back);
- "flash_attention_2": the flash-attn package on a CUDA GPU, with padded rows packed out.
"""

from __future__ import annotations

import importlib.util
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

IMPLEMENTATIONS = ("eager", "sdpa", "flash_attention_2")


def check_implementation(impl: str, supports_sdpa: bool = True, supports_flash: bool = True) -> None:
    """Raise a clear error for an unknown backend or one that cannot run here."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"attn_implementation must be one of {IMPLEMENTATIONS}, got {impl!r}")
    if impl == "sdpa" and not supports_sdpa:
        raise ValueError("this model does not support attn_implementation='sdpa'; use 'eager'")
    if impl == "flash_attention_2":
        if not supports_flash:
            raise ValueError("this model does not support attn_implementation='flash_attention_2'")
        if importlib.util.find_spec("flash_attn") is None:
            raise ImportError(
                "attn_implementation='flash_attention_2' needs the flash-attn package "
                "(pip install flash-attn --no-build-isolation); use 'sdpa' otherwise"
            )
        if not torch.cuda.is_available():
            raise ValueError("attn_implementation='flash_attention_2' needs a CUDA GPU; use 'sdpa' on CPU")


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, H*D) -> (B, H, T, D)"""
    b, t, c = x.shape
    return x.view(b, t, n_heads, c // n_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, D) -> (B, T, H*D)"""
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    additive_mask: Optional[torch.Tensor] = None,
    *,
    scale: float,
    dropout: float = 0.0,
    head_mask: Optional[torch.Tensor] = None,
    need_weights: bool = False,
    impl: str = "sdpa",
    is_causal: bool = False,
    upcast: bool = False,
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Scaled dot-product attention.

    q (B, H, T, D); k, v (B, K, S, D) with H a multiple of K (grouped-query attention).
    additive_mask: None, or a float mask broadcastable to (B, H, T, S), added to the scores (0 keep,
    dtype-min drop); every backend takes this one form ("flash_attention_2" reads the kept keys of a
    (B, 1, 1, S) padding mask from it).
    is_causal: key s is hidden from query t when s > t + S - T (only where no additive_mask is given).
    head_mask: broadcastable to (B, H, T, S), multiplies the probabilities after dropout.
    dropout: the probability, already zero outside training.
    upcast: eager q k^T in float32 (GPT-J, CodeGen: half-precision q k^T can overflow); the softmax is in
    float32 either way, the weights back in v's dtype; SDPA kernels accumulate in float32 anyway.
    Returns (out (B, H, T, D), weights (B, H, T, S) or None).
    """
    if need_weights or head_mask is not None or impl == "eager" or (q.shape[-2] == 1 and impl == "sdpa"):
        return _eager(q, k, v, additive_mask, scale=scale, dropout=dropout, head_mask=head_mask, is_causal=is_causal,
                      upcast=upcast)
    if impl == "flash_attention_2":
        if additive_mask is not None and additive_mask.shape[-2] != 1:
            raise ValueError("attn_implementation='flash_attention_2' takes a key padding mask (B, 1, 1, S) only")
        key_padding = None if additive_mask is None else additive_mask[:, 0, 0, :] == 0  # (B, S), True: kept
        return _flash(q, k, v, key_padding, scale=scale, dropout=dropout, is_causal=is_causal), None
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=additive_mask, dropout_p=dropout, is_causal=is_causal and additive_mask is None,
        scale=scale, enable_gqa=k.shape[1] != q.shape[1],
    )
    return out, None


def _eager(q, k, v, additive_mask, *, scale, dropout, head_mask, is_causal, upcast=False):
    b, h, t, d = q.shape
    groups = h // k.shape[1]  # query heads per key/value head: grouped as (K, groups), without copying k, v
    if upcast:
        q, k = q.float(), k.float()
    scores = torch.matmul((q * scale).reshape(b, h // groups, groups * t, d), k.transpose(-1, -2))
    scores = scores.view(b, h, t, -1)  # (B, H, T, S)
    if additive_mask is not None:
        scores = scores + additive_mask
    if is_causal and additive_mask is None:
        t, s = scores.shape[-2:]
        causal = torch.ones(t, s, dtype=torch.bool, device=q.device).tril(s - t)
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1, dtype=torch.float32).to(v.dtype)
    if dropout > 0.0:
        weights = F.dropout(weights, p=dropout)
    if head_mask is not None:
        weights = weights * head_mask
    out = torch.matmul(weights.reshape(b, h // groups, groups * t, -1), v)  # (B, K, groups * T, D)
    return out.view(b, h, t, -1), weights


def _flash(q, k, v, key_padding, *, scale, dropout, is_causal):
    """key_padding: None or bool (B, S), True at the keys kept; padded rows are packed out."""
    from flash_attn import flash_attn_func, flash_attn_varlen_func

    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, T, H, D)
    if key_padding is None:
        out = flash_attn_func(q, k, v, dropout, softmax_scale=scale, causal=is_causal)
        return out.transpose(1, 2)
    b, t = q.shape[:2]
    keep = key_padding.reshape(-1).nonzero().squeeze(1)  # indices of real tokens in (B*T)
    lengths = key_padding.sum(-1, dtype=torch.int32)
    cu_seqlens = F.pad(lengths.cumsum(0, dtype=torch.int32), (1, 0))
    max_len = int(lengths.max())
    packed = [x.reshape(b * t, *x.shape[2:])[keep] for x in (q, k, v)]  # (N, H, D)
    out = flash_attn_varlen_func(
        *packed, cu_seqlens, cu_seqlens, max_len, max_len, dropout, softmax_scale=scale, causal=is_causal
    )
    full = q.new_zeros(b * t, *q.shape[2:])
    full[keep] = out
    return full.view(b, t, *q.shape[2:]).transpose(1, 2)
