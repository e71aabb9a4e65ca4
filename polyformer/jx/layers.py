"""Layers every Flax model shares: dense / embedding factories with the reference's init, activations,
the attention function, masks, the KV cache in the "cache" collection, GPT-J's rotary embedding, the
layer stack and the tied output projection.

Notation: B batch, T queries, S keys (the cache length once a cache is used), C width, H heads,
D head dim, R rotated dims, L layers.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS = {  # config.activation / activation_function -> function, as 4.37's Flax models map them
    "gelu": partial(nn.gelu, approximate=False),
    "gelu_new": partial(nn.gelu, approximate=True),
    "relu": nn.relu,
    "silu": nn.swish,
    "swish": nn.swish,
    "quick_gelu": lambda x: x * jax.nn.sigmoid(1.702 * x),
}


class Module(nn.Module):
    """A linen module built from a model config, computing in `dtype` (parameters stay float32)."""

    config: Any
    dtype: Any = jnp.float32


def activation(name: str) -> Callable:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation {name!r} is not supported in Flax; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def dense(features: int, config: Any, dtype: Any, name: str, *, use_bias: bool = True) -> nn.Dense:
    """nn.Dense computing in `dtype`, kernel drawn from normal(initializer_range)."""
    return nn.Dense(features, use_bias=use_bias, dtype=dtype, name=name,
                    kernel_init=jax.nn.initializers.normal(config.initializer_range))


def embed(num: int, features: int, config: Any, name: str) -> nn.Embed:
    return nn.Embed(num, features, embedding_init=jax.nn.initializers.normal(config.initializer_range), name=name)


# --- attention -------------------------------------------------------------------------------------


def attend(q, k, v, bias, *, dtype, dropout_rate: float = 0.0, dropout_rng=None):
    """Scaled dot-product attention: q (B, T, H, D), k / v (B, S, H, D), bias additive (B|1, 1|H, T, S)
    or None. Returns out (B, T, H, D) and the post-softmax weights (B, H, T, S), dropped out when a
    `dropout_rng` is given. q is divided by sqrt(D) before the product, softmax runs in `dtype`, as
    flax.linen.dot_product_attention_weights does (same operations, same numbers)."""
    q, k = q.astype(dtype), k.astype(dtype)
    q = q / jnp.sqrt(q.shape[-1]).astype(dtype)
    scores = jnp.einsum("bthd,bshd->bhts", q, k)  # (B, H, T, S)
    if bias is not None:
        scores = scores + bias
    weights = jax.nn.softmax(scores).astype(dtype)
    if dropout_rng is not None and dropout_rate > 0.0:
        keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, weights.shape)
        weights = weights * (keep / (1.0 - dropout_rate)).astype(dtype)
    return jnp.einsum("bhts,bshd->bthd", weights, v), weights


def mask_bias(keep, dtype, value: Optional[float] = None):
    """Boolean mask (True = attend) -> additive bias: 0 where kept, `value` (default dtype-min) elsewhere."""
    fill = jnp.finfo(dtype).min if value is None else value
    return jnp.where(keep, jnp.zeros((), dtype), jnp.asarray(fill, dtype))


def causal_keep(query_positions, key_length: int):
    """(T,) absolute query positions -> (1, 1, T, S) True where key position <= query position."""
    return (jnp.arange(key_length)[None, :] <= query_positions[:, None])[None, None]


def cached_kv(module: nn.Module, k, v, init_cache: bool):
    """The cache of `module` in the "cache" collection: cached_key / cached_value (B, S_max, H, D) and
    cache_index (int32). With a cache, writes k, v (B, T, H, D) at cache_index, advances it by T and
    returns the whole cache with the index it started from; otherwise (or when `init_cache` only creates
    it) returns k, v and None."""
    ready = module.has_variable("cache", "cached_key")
    if not ready and not init_cache:
        return k, v, None
    cached_k = module.variable("cache", "cached_key", jnp.zeros, k.shape, k.dtype)
    cached_v = module.variable("cache", "cached_value", jnp.zeros, v.shape, v.dtype)
    index = module.variable("cache", "cache_index", lambda: jnp.array(0, dtype=jnp.int32))
    if not ready:
        return k, v, None
    start = index.value
    cached_k.value = jax.lax.dynamic_update_slice(cached_k.value, k.astype(cached_k.value.dtype), (0, start, 0, 0))
    cached_v.value = jax.lax.dynamic_update_slice(cached_v.value, v.astype(cached_v.value.dtype), (0, start, 0, 0))
    index.value = start + k.shape[1]
    return cached_k.value, cached_v.value, start


# --- rotary (GPT-J: "rotate every two") ------------------------------------------------------------


def sincos_table(num_positions: int, dim: int) -> np.ndarray:
    """(num_positions, dim) float32 [sin | cos] of position * inv_freq, inv_freq = 1 / 10000^(2i / dim):
    angles in float64 rounded to float32, then numpy's float32 sin / cos, as 4.37's Flax GPT-J builds it."""
    inv_freq = 1.0 / (10000 ** (np.arange(0, dim, 2) / dim))
    angles = np.outer(np.arange(num_positions), inv_freq).astype(np.float32)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=-1)


def rotate_pairs(x, sincos):
    """x (B, T, H, R); sincos (B, T, R) gathered from `sincos_table`. Each pair (a, b) of dims (2i, 2i+1)
    turns by its angle: (a cos - b sin, b cos + a sin)."""
    sin, cos = jnp.split(sincos[:, :, None, :], 2, axis=-1)  # (B, T, 1, R/2)
    pairs = x.reshape(x.shape[:-1] + (-1, 2))
    a, b = pairs[..., 0], pairs[..., 1]
    return jnp.stack((a * cos - b * sin, b * cos + a * sin), axis=-1).reshape(x.shape[:-1] + (-1,))


# --- stack and heads -------------------------------------------------------------------------------


class Stack(nn.Module):
    """`num_layers` blocks named "0", "1", ... (the checkpoint's `layer.0` / `h.0`), run in order.

    Each block is called as block(x, *args, **kwargs) and returns (x, attention weights). Returns x,
    the hidden states (the input of each block, then the last output) and the attentions, each a
    tuple or None when not asked for."""

    block: Callable[..., nn.Module]
    num_layers: int

    @nn.compact
    def __call__(self, x, *args, output_hidden_states: bool = False, output_attentions: bool = False, **kwargs):
        hidden_states, attentions = [], []
        for i in range(self.num_layers):
            hidden_states.append(x)
            x, weights = self.block(name=str(i))(x, *args, output_attentions=output_attentions, **kwargs)
            attentions.append(weights)
        hidden_states.append(x)
        return (x, tuple(hidden_states) if output_hidden_states else None,
                tuple(attentions) if output_attentions else None)


class TiedProjection(nn.Module):
    """Output projection sharing the input embedding (V, C): x @ embedding.T + bias, in `dtype`.
    Its only parameter is `bias` (V,)."""

    vocab_size: int
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, embedding):
        bias = self.param("bias", nn.initializers.zeros, (self.vocab_size,))
        x, kernel, bias = (jnp.asarray(t, self.dtype) for t in (x, embedding.T, bias))
        return jax.lax.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ()))) + bias


def split_heads(x, num_heads: int):
    """(B, T, C) -> (B, T, H, D)."""
    return x.reshape(x.shape[:2] + (num_heads, -1))


def merge_heads(x):
    """(B, T, H, D) -> (B, T, C)."""
    return x.reshape(x.shape[:2] + (-1,))
