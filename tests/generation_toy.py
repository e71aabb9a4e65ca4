"""A tiny decoder-only language model in plain torch, for testing generate() without the model families.

The same functions run under transformers 4.37.2 (scripts/fixtures/make_generation_fixtures.py wraps them
in a transformers model and records what its generate() returns) and under polyformer (the tests wrap
them in a polyformer model), so both libraries decode the same logits and their ids must agree.
It imports neither library. One attention layer, one head:

    x = wte[ids] + wpe[positions];  h = x + attention(x, past keys / values, mask);  logits = scale * tanh(h) @ wout.T

Notation: B batch, T new tokens, S keys (past + new), C width, V vocab.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

import torch

CONFIG = {"vocab_size": 24, "hidden_size": 16, "max_position_embeddings": 48, "logit_scale": 4.0}


def make_params(seed: int = 0) -> Dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    c, v, p = CONFIG["hidden_size"], CONFIG["vocab_size"], CONFIG["max_position_embeddings"]
    shapes = {"wte": (v, c), "wpe": (p, c), "wq": (c, c), "wk": (c, c), "wv": (c, c), "wout": (v, c)}
    return {name: torch.randn(shape, generator=generator) / math.sqrt(shape[-1] / 2) for name, shape in shapes.items()}


def positions_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    positions = attention_mask.long().cumsum(-1) - 1
    return positions.masked_fill(attention_mask == 0, 1)


def forward(params: Dict[str, torch.Tensor], input_ids: torch.Tensor, attention_mask: torch.Tensor,
            position_ids: torch.Tensor, past_keys: Optional[torch.Tensor] = None,
            past_values: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> logits (B, T, V), keys and values of every token so far (B, S, C), attention weights (B, T, S).

    attention_mask (B, S) covers past and new tokens."""
    x = params["wte"][input_ids] + params["wpe"][position_ids]                 # (B, T, C)
    q, k, v = x @ params["wq"], x @ params["wk"], x @ params["wv"]
    if past_keys is not None:
        k, v = torch.cat([past_keys, k], dim=1), torch.cat([past_values, v], dim=1)
    return _attend(params, x, q, k, v, attention_mask)


def forward_into(params: Dict[str, torch.Tensor], input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 position_ids: torch.Tensor, key_buffer: torch.Tensor, value_buffer: torch.Tensor, seen: int):
    """Same as `forward`, with the keys / values written into preallocated (B, S_max, C) buffers at
    [seen, seen + T) and read back as views (a static cache)."""
    x = params["wte"][input_ids] + params["wpe"][position_ids]
    q = x @ params["wq"]
    end = seen + x.shape[1]
    key_buffer[:, seen:end] = x @ params["wk"]
    value_buffer[:, seen:end] = x @ params["wv"]
    return _attend(params, x, q, key_buffer[:, :end], value_buffer[:, :end], attention_mask)


def _attend(params, x, q, k, v, attention_mask):
    t, s = q.shape[1], k.shape[1]
    scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])                      # (B, T, S)
    causal = torch.arange(s)[None, :] <= (torch.arange(t) + s - t)[:, None]     # (T, S)
    keep = causal[None] & attention_mask[:, None, :].bool()
    weights = torch.softmax(scores.masked_fill(~keep, -1e9), dim=-1)
    h = x + weights @ v
    logits = CONFIG["logit_scale"] * torch.tanh(h) @ params["wout"].T            # (B, T, V)
    return logits, k, v, weights


def kwargs_from_json(kwargs: Dict[str, Any], tensors: Optional[Dict[str, torch.Tensor]] = None) -> Dict[str, Any]:
    """Fixture kwargs (JSON) -> Python: `sequence_bias` [[ids, bias], ...] -> {tuple(ids): bias},
    `exponential_decay_length_penalty` -> a tuple, "@name" -> tensors[name]."""
    out = {k: tensors[v[1:]] if isinstance(v, str) and v.startswith("@") else v for k, v in kwargs.items()}
    if "sequence_bias" in out:
        out["sequence_bias"] = {tuple(ids): bias for ids, bias in out["sequence_bias"]}
    if "exponential_decay_length_penalty" in out:
        out["exponential_decay_length_penalty"] = tuple(out["exponential_decay_length_penalty"])
    return out
