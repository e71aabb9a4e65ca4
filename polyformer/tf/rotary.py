"""Rotary position embedding, GPT-J's "rotate every two" layout, computed from the position ids.

Notation: B batch, H heads, T tokens, D head dim, R rotated dims (the first R of each head).

Pair i = dims (2i, 2i + 1) turns by position * inv_freq[i], inv_freq[i] = 1 / 10000^(2i / R) (float64, then
float32, as transformers' TF GPT-J builds its table): (a, b) -> (a cos - b sin, b cos + a sin).
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from .backend import tf


class Rotary:
    """cos / sin tables for `rotate`; holds no weights."""

    def __init__(self, dim: int, base: float = 10000.0):
        if dim % 2:
            raise ValueError(f"rotary dims must be even, got {dim}")
        self.dim = dim
        self.inv_freq = tf.constant((1.0 / base ** (np.arange(0, dim, 2) / dim)).astype(np.float32))  # (R/2,)

    def tables(self, position_ids: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
        """position_ids (B|1, T) -> cos, sin (B|1, 1, T, R) float32, each angle at both dims of its pair."""
        angles = tf.cast(position_ids, tf.float32)[..., None] * self.inv_freq  # (B|1, T, R/2)
        return tuple(tf.repeat(f(angles), 2, axis=-1)[:, None] for f in (tf.cos, tf.sin))

    def rotate(self, x: tf.Tensor, tables: Tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        """x (B, H, T, D) with its first R dims rotated."""
        cos, sin = tables
        rot, rest = x[..., : self.dim], x[..., self.dim:]
        pairs = tf.reshape(rot, tf.concat([tf.shape(rot)[:-1], [self.dim // 2, 2]], axis=0))
        swapped = tf.reshape(tf.stack([-pairs[..., 1], pairs[..., 0]], axis=-1), tf.shape(rot))  # (-b, a) per pair
        rot = rot * cos + swapped * sin
        return rot if x.shape[-1] == self.dim else tf.concat([rot, rest], axis=-1)
