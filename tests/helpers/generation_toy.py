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


# --- a tiny encoder-decoder ---------------------------------------------------------------------------------
# One bidirectional encoder attention layer; a decoder layer with causal self-attention (positions from the
# tokens already cached) and cross-attention over the encoder states:
#
#     e = wte[src] + enc_pos[0..S);  enc = e + attention(e, e, source mask)
#     y = wte[ids] + dec_pos[seen..seen+T);  h = y + causal attention(y, cached y);  g = h + attention(h, enc)
#     logits = scale * tanh(g) @ wout.T
#
# M source tokens (encoder length).

SEQ2SEQ_CONFIG = {"vocab_size": 24, "d_model": 16, "max_position_embeddings": 48, "logit_scale": 4.0}
_SEQ2SEQ_MATRICES = ("enc_q", "enc_k", "enc_v", "self_q", "self_k", "self_v", "cross_q", "cross_k", "cross_v")


def make_seq2seq_params(seed: int = 2) -> Dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    c, v, p = SEQ2SEQ_CONFIG["d_model"], SEQ2SEQ_CONFIG["vocab_size"], SEQ2SEQ_CONFIG["max_position_embeddings"]
    shapes = {"wte": (v, c), "enc_pos": (p, c), "dec_pos": (p, c), "wout": (v, c),
              **{name: (c, c) for name in _SEQ2SEQ_MATRICES}}
    return {name: torch.randn(shape, generator=generator) / math.sqrt(shape[-1] / 2) for name, shape in shapes.items()}


def _masked_attention(q, k, v, keep):
    """softmax(q k^T / sqrt(C)) v over the keys where `keep` (broadcast to (B, T, S)); -> (out, weights)."""
    scores = (q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])).masked_fill(~keep, -1e9)
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights


def encode(params: Dict[str, torch.Tensor], input_ids: Optional[torch.Tensor], attention_mask: torch.Tensor,
           inputs_embeds: Optional[torch.Tensor] = None):
    """-> encoder states (B, M, C), embeddings (B, M, C), attention weights (B, M, M). `inputs_embeds`
    (B, M, C) replaces wte[input_ids]."""
    tokens = params["wte"][input_ids] if inputs_embeds is None else inputs_embeds
    e = tokens + params["enc_pos"][: tokens.shape[1]]
    out, weights = _masked_attention(e @ params["enc_q"], e @ params["enc_k"], e @ params["enc_v"],
                                     attention_mask[:, None, :].bool())
    return e + out, e, weights


def cross_kv(params: Dict[str, torch.Tensor], encoder_states: torch.Tensor):
    """The cross-attention keys and values of the encoder states, each (B, M, C)."""
    return encoder_states @ params["cross_k"], encoder_states @ params["cross_v"]


def decode(params: Dict[str, torch.Tensor], decoder_input_ids: torch.Tensor, seen: int, store, cross,
           encoder_mask: torch.Tensor):
    """One decoder forward over T new tokens at positions [seen, seen + T). `store(k, v)` keeps this
    forward's self-attention keys / values (B, T, C) and returns every one so far (B, S, C); `cross` is
    `cross_kv(...)`. -> logits (B, T, V), self-attention weights (B, T, S), cross weights (B, T, M), g."""
    t = decoder_input_ids.shape[1]
    y = params["wte"][decoder_input_ids] + params["dec_pos"][seen: seen + t]
    k, v = store(y @ params["self_k"], y @ params["self_v"])
    s = k.shape[1]
    causal = (torch.arange(s)[None, :] <= (torch.arange(t) + s - t)[:, None])[None]
    out, self_weights = _masked_attention(y @ params["self_q"], k, v, causal)
    h = y + out
    out, cross_weights = _masked_attention(h @ params["cross_q"], cross[0], cross[1], encoder_mask[:, None, :].bool())
    g = h + out
    logits = SEQ2SEQ_CONFIG["logit_scale"] * torch.tanh(g) @ params["wout"].T
    return logits, self_weights, cross_weights, g
