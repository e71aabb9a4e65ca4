"""Rotary position embeddings (RoPE), computed once per forward from the position ids.

Notation: B batch, H heads, T tokens of this forward, D head dim, R rotated dims (R <= D).

Two layouts of the rotated pairs:
- "interleaved" (GPT-J, CodeGen: "rotate every two"): dims (0, 1), (2, 3), ... of the first R dims of
  each head are rotated, the other D - R dims pass through;
- "half" (Llama: "rotate half"): dims (i, i + D/2) are rotated, over the whole head.

Pair i turns by the angle position * inv_freq[i], inv_freq[i] = 1 / base^(2i / R), with the reference's
float32 arithmetic. Llama's `rope_scaling` as 4.37 computes it: "linear" divides positions by the
factor; "dynamic" (NTK) raises the base once the key length S exceeds max_position_embeddings:
base * (factor * S / max_positions - (factor - 1)) ^ (R / (R - 2)).
(4.37 keeps the longest S a module has seen and uses it for later, shorter calls too; here each
forward uses its own S, which gives the same numbers for a fresh model and within one generate().)
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

RotaryTables = Tuple[torch.Tensor, torch.Tensor]  # cos, signed sin: (B|1, 1, T, R), laid out as the pairs


class Rotary:
    """cos/sin tables for `rotate`. Not a module: it holds no weights and no state.

    dim: rotated dims R; base: rope_theta; layout "interleaved" or "half"; scaling: Llama's
    {"type": "linear" | "dynamic", "factor": f} or None; max_positions: for "dynamic".
    """

    def __init__(self, dim: int, *, base: float = 10000.0, layout: str = "half",
                 scaling: Optional[dict] = None, max_positions: int = 2048):
        if dim % 2:
            raise ValueError(f"rotary dims must be even, got {dim}")
        if layout not in ("interleaved", "half"):
            raise ValueError(f"rotary layout must be 'interleaved' or 'half', got {layout!r}")
        self.dim, self.base, self.layout, self.max_positions = dim, float(base), layout, max_positions
        self.kind, self.factor = None, 1.0
        if scaling is not None:
            self.kind = scaling.get("type", scaling.get("rope_type"))
            self.factor = float(scaling["factor"])
            if self.kind not in ("linear", "dynamic"):
                raise ValueError(f"rope_scaling type must be 'linear' or 'dynamic', got {self.kind!r}")

    def tables(self, position_ids: torch.Tensor, key_length: int, dtype: torch.dtype = torch.float32) -> RotaryTables:
        """position_ids (B|1, T) -> cos, sin (B|1, 1, T, R) in `dtype`, each angle at both dims of its pair
        and the sin negated at the first, so that `rotate` is x * cos + swap(x) * sin; key_length: S (for
        "dynamic")."""
        base = self.base
        if self.kind == "dynamic" and key_length > self.max_positions:
            base = base * ((self.factor * key_length / self.max_positions) - (self.factor - 1)) ** (self.dim / (self.dim - 2))
        # (R/2,) float32: 1 / base^(2i / R), as the reference computes it
        inv_freq = 1.0 / (base ** (torch.arange(0, self.dim, 2, device=position_ids.device).float() / self.dim))
        positions = position_ids.float()
        if self.kind == "linear":
            positions = positions / self.factor
        angles = (positions[..., None] * inv_freq)[:, None]  # (B|1, 1, T, R/2)
        cos, sin = angles.cos().to(dtype), angles.sin().to(dtype)
        if self.layout == "interleaved":  # dims (2i, 2i + 1): cos (c, c), sin (-s, s)
            # (stack + reshape, not repeat_interleave / flatten: what the ONNX exporter keeps dynamic)
            pairs = (*cos.shape[:-1], -1)
            return torch.stack((cos, cos), dim=-1).reshape(pairs), torch.stack((-sin, sin), dim=-1).reshape(pairs)
        return torch.cat((cos, cos), dim=-1), torch.cat((-sin, sin), dim=-1)  # dims (i, i + R/2)

    def rotate(self, x: torch.Tensor, tables: RotaryTables) -> torch.Tensor:
        """x (B, H, T, D) with its first R dims rotated; same dtype as x (computed in the tables' dtype).

        Each pair (a, b) becomes (a cos - b sin, b cos + a sin): x * cos + swap(x) * sin with the signed
        sin of `tables`, the same floating-point operations (negating a product is exact)."""
        cos, sin = tables
        rot, rest = x[..., : self.dim], x[..., self.dim:]
        rot = rot.to(cos.dtype)
        if self.layout == "interleaved":
            swapped = torch.stack((rot[..., 1::2], rot[..., 0::2]), dim=-1).reshape(rot.shape)  # (b, a) in every pair
        else:
            a, b = rot.chunk(2, dim=-1)
            swapped = torch.cat((b, a), dim=-1)
        rot = (rot * cos + swapped * sin).to(x.dtype)
        return rot if rest.shape[-1] == 0 else torch.cat((rot, rest), dim=-1)
