"""The one attention function every TF model calls, and the additive masks it takes.

Notation: B batch, T query length, S key length, H heads, D head dim, C width.

Masks are additive (0 keep, a large negative drop), built once per forward and broadcast to (B, H, T, S).
Each family keeps its reference's constants, so rows whose every key is masked come out as in 4.37's TF code
(DistilBERT -1e30 on padded keys; GPT-J -1e9 on future keys, -10000 on padded ones; CLIP -10000 / -1e8).
"""

from __future__ import annotations

from typing import Optional, Tuple

from .backend import tf
from .layers import dropout as drop


def split_heads(x: tf.Tensor, n_heads: int) -> tf.Tensor:
    """(B, T, H*D) -> (B, H, T, D)"""
    shape = tf.shape(x)
    x = tf.reshape(x, (shape[0], shape[1], n_heads, x.shape[-1] // n_heads))
    return tf.transpose(x, (0, 2, 1, 3))


def merge_heads(x: tf.Tensor) -> tf.Tensor:
    """(B, H, T, D) -> (B, T, H*D)"""
    shape = tf.shape(x)
    return tf.reshape(tf.transpose(x, (0, 2, 1, 3)), (shape[0], shape[2], x.shape[1] * x.shape[3]))


def padding_bias(attention_mask: Optional[tf.Tensor], fill: float) -> Optional[tf.Tensor]:
    """(B, S) 1 keep / 0 drop -> additive (B, 1, 1, S) float32: 0 or `fill`; None stays None."""
    if attention_mask is None:
        return None
    keep = tf.cast(attention_mask, tf.float32)[:, None, None, :]
    return (1.0 - keep) * fill


def causal_bias(query_length, key_length, fill: float, offset=None) -> tf.Tensor:
    """(1, 1, T, S): `fill` where key s lies after query t, whose position is offset + t (offset defaults to
    S - T: the queries are the last T keys)."""
    if offset is None:
        offset = key_length - query_length
    queries = tf.range(query_length)[:, None] + offset
    future = tf.range(key_length)[None, :] > queries
    return tf.where(future, fill, 0.0)[None, None]


def add_biases(*biases: Optional[tf.Tensor]) -> Optional[tf.Tensor]:
    present = [b for b in biases if b is not None]
    if not present:
        return None
    total = present[0]
    for b in present[1:]:
        total = total + b
    return total


def attend(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias: Optional[tf.Tensor] = None, *, scale_queries: bool = False,
           dropout: float = 0.0, training: bool = False, head_mask: Optional[tf.Tensor] = None
           ) -> Tuple[tf.Tensor, tf.Tensor]:
    """softmax(q k^T / sqrt(D) + bias) v, scores in float32; `scale_queries` multiplies q by 1/sqrt(D) before
    the product instead of dividing the scores (DistilBERT's order; the rounding differs, not the math).

    q (B, H, T, D), k and v (B, H, S, D); bias additive, broadcastable to (B, H, T, S); head_mask broadcastable
    to it, multiplies the probabilities after dropout. Returns (out (B, H, T, D), weights (B, H, T, S)).
    """
    q, k = tf.cast(q, tf.float32), tf.cast(k, tf.float32)
    head_dim = float(q.shape[-1])
    if scale_queries:
        scores = tf.matmul(q * tf.math.rsqrt(head_dim), k, transpose_b=True)
    else:
        scores = tf.matmul(q, k, transpose_b=True) / head_dim ** 0.5
    if bias is not None:
        scores = scores + bias
    weights = tf.cast(tf.nn.softmax(scores, axis=-1), v.dtype)
    weights = drop(weights, dropout, training)
    if head_mask is not None:
        weights = weights * head_mask
    return tf.matmul(weights, v), weights
