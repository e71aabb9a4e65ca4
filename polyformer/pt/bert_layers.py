"""BERT's post-LayerNorm encoder with BERT's checkpoint names, for families that keep them (CANINE).

Notation: B batch, T query length, S key length, C width (hidden_size), H heads, D head dim.

    layer.N.attention.self.{query,key,value}      projections, then `attend`
    layer.N.attention.output.{dense,LayerNorm}    x = LN(x + dense(attn))
    layer.N.intermediate.dense, layer.N.output.{dense,LayerNorm}    x = LN(x + dense(act(dense(x))))

The config needs BERT's field names: hidden_size, num_attention_heads, intermediate_size, hidden_act,
hidden_dropout_prob, attention_probs_dropout_prob, layer_norm_eps (and chunk_size_feed_forward).
A self-attention can be given another attention pattern (`pattern.attend(q, k, v, mask, **kwargs)`,
e.g. CANINE's local windows) in place of full attention.
"""

from __future__ import annotations

import math
from typing import List, Optional, Set

import torch
import torch.nn as nn

from .attention import attend, merge_heads, split_heads
from .layers import activation, chunked, run_layers
from .pruning import prune_attention


class BertSelfAttention(nn.Module):
    def __init__(self, config, pattern=None):
        super().__init__()
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(f"hidden_size={config.hidden_size} must be a multiple of "
                             f"num_attention_heads={config.num_attention_heads}")
        self.n_heads = config.num_attention_heads
        self.head_size = config.hidden_size // self.n_heads
        self.scale = 1.0 / math.sqrt(self.head_size)
        self.dropout = config.attention_probs_dropout_prob
        self.impl = config._attn_implementation
        self.attend = attend if pattern is None else pattern.attend
        self.query, self.key, self.value = (nn.Linear(config.hidden_size, config.hidden_size) for _ in range(3))

    def forward(self, x, mask, head_mask=None, output_attentions=False):  # x: (B, T, C)
        q, k, v = (split_heads(lin(x), self.n_heads) for lin in (self.query, self.key, self.value))  # (B, H, T, D)
        out, weights = self.attend(q, k, v, mask, scale=self.scale, dropout=self.dropout if self.training else 0.0,
                                   head_mask=head_mask, need_weights=output_attentions, impl=self.impl)
        return merge_heads(out), weights  # (B, T, C), (B, H, T, S) | None


class BertSelfOutput(nn.Module):
    """The post-norm residual: LayerNorm(dropout(dense(x)) + residual); also the feed-forward's output."""

    def __init__(self, config, in_features: Optional[int] = None):
        super().__init__()
        self.dense = nn.Linear(in_features or config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(nn.Module):
    def __init__(self, config, pattern=None):
        super().__init__()
        self.self = BertSelfAttention(config, pattern)
        self.output = BertSelfOutput(config)
        self.pruned_heads: Set[int] = set()  # original head numbers removed by prune_heads

    @property
    def n_heads(self) -> int:
        return self.self.n_heads

    @n_heads.setter
    def n_heads(self, value: int) -> None:
        self.self.n_heads = value

    def prune_heads(self, heads: List[int]) -> None:
        """Remove `heads` (numbered as in the unpruned layer) from query, key, value and output.dense."""
        projections = [(self.self, name) for name in ("query", "key", "value")]
        prune_attention(self, heads, projections, (self.output, "dense"), self.self.head_size)

    def forward(self, x, mask, head_mask=None, output_attentions=False):
        out, weights = self.self(x, mask, head_mask=head_mask, output_attentions=output_attentions)
        return self.output(out, x), weights


class BertIntermediate(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)
        self.intermediate_act_fn = activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.intermediate_act_fn(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, config, pattern=None):
        super().__init__()
        self.attention = BertAttention(config, pattern)
        self.intermediate = BertIntermediate(config)
        self.output = BertSelfOutput(config, config.intermediate_size)
        self.chunk_size = getattr(config, "chunk_size_feed_forward", 0)

    def forward(self, x, mask, head_mask=None, output_attentions=False):
        x, weights = self.attention(x, mask, head_mask=head_mask, output_attentions=output_attentions)
        return chunked(lambda h: self.output(self.intermediate(h), h), x, self.chunk_size), weights


class BertEncoder(nn.Module):
    """`num_layers` BertLayers; forward returns (x, hidden_states | None, attentions | None) as `run_layers`."""

    def __init__(self, config, num_layers: Optional[int] = None, pattern=None):
        super().__init__()
        n = config.num_hidden_layers if num_layers is None else num_layers
        self.layer = nn.ModuleList(BertLayer(config, pattern) for _ in range(n))
        self.gradient_checkpointing = False

    def forward(self, x, mask, head_mask=None, output_hidden_states=False, output_attentions=False):
        return run_layers(self.layer, x, mask, head_mask=head_mask, output_hidden_states=output_hidden_states,
                          output_attentions=output_attentions, gradient_checkpointing=self.gradient_checkpointing)


class BertPooler(nn.Module):
    """tanh(dense(x[:, 0])): the first position, (B, T, C) -> (B, C)."""

    def __init__(self, config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(x[:, 0]))
