"""IDEFICS's text-side layers: the decoupled vocabulary (regular rows that may be frozen + additional rows
that stay trainable), Llama's decoder layer with IDEFICS's dropout, and the gated cross-attention layer.

Notation: B batch, T new tokens, C width, H heads, D head dim, N images per row, L tokens per image,
E the vision width. Module attributes are the reference's checkpoint keys.

A gated cross-attention layer (text queries, image keys/values):

    x ──> input_layernorm -> cross_attn(x, images) -> 0 where the token sees no image ─┐ * tanh(alpha_cross_attn)
    │                                                                                 v
    └────────────────────────────────────────────────────────────────────────────────> + ──> x'
    x' + tanh(alpha_dense) * mlp(post_attention_layernorm(x'))
"""

from __future__ import annotations

import functools
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...pt.attention import attend, merge_heads, split_heads
from ...pt.decoder import DecoderStep
from ..llama.configuration import LlamaConfig
from ..llama.modeling_torch import LlamaDecoderLayer, LlamaMLP, LlamaRMSNorm
from .configuration import IdeficsConfig
from .images import ImageContext

# --------------------------------------------------------------------------------------------------
# Decoupled vocabulary: regular rows (may be frozen) + additional rows (always trainable)


class IdeficsDecoupledEmbedding(nn.Embedding):
    """`weight` (num_embeddings, C) for the regular ids, frozen when `partially_freeze`, and, when
    num_additional_embeddings > 0, `additional_embedding` for ids num_embeddings .. + num_additional - 1."""

    def __init__(self, num_embeddings: int, num_additional_embeddings: int, embedding_dim: int,
                 partially_freeze: Optional[bool] = False, device=None, dtype=None, padding_idx=None, **kwargs):
        if padding_idx is not None and padding_idx > num_embeddings:
            raise ValueError(f"padding_idx must be within num_embeddings. Got {padding_idx} and {num_embeddings}")
        super().__init__(num_embeddings, embedding_dim, padding_idx=padding_idx, device=device, dtype=dtype, **kwargs)
        self.num_additional_embeddings = num_additional_embeddings
        self.partially_freeze = partially_freeze
        if partially_freeze:
            self.weight.requires_grad_(False)
        if num_additional_embeddings > 0:
            self.additional_embedding = nn.Embedding(num_additional_embeddings, embedding_dim, device=device,
                                                     dtype=dtype)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, T, C)
        if not self.num_additional_embeddings:
            return F.embedding(input_ids, self.weight)  # the padding row is not special here, as in 4.37
        extra = input_ids >= self.num_embeddings
        regular = F.embedding(input_ids.masked_fill(extra, 0), self.weight)
        added = self.additional_embedding((input_ids - self.num_embeddings).clamp(min=0))
        return torch.where(extra[..., None], added, regular)

    def extra_repr(self) -> str:
        return (f"num_embeddings={self.num_embeddings}, num_additional_embeddings={self.num_additional_embeddings}, "
                f"embedding_dim={self.embedding_dim}, partially_freeze={self.partially_freeze}")


class IdeficsDecoupledLinear(nn.Linear):
    """`weight` (out_features, in) frozen when `partially_freeze`, and `additional_fc` for
    out_additional_features more outputs, concatenated after the regular ones."""

    def __init__(self, in_features: int, out_features: int, out_additional_features: int = 0, bias: bool = True,
                 partially_freeze: bool = True, device=None, dtype=None):
        super().__init__(in_features, out_features, bias, device, dtype)
        self.out_additional_features = out_additional_features
        self.partially_freeze = partially_freeze
        if partially_freeze:
            self.requires_grad_(False)
        if out_additional_features > 0:
            self.additional_fc = nn.Linear(in_features, out_additional_features, bias=bias, device=device, dtype=dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight, self.bias)
        return torch.cat((out, self.additional_fc(x)), -1) if self.out_additional_features > 0 else out

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"out_additional_features={self.out_additional_features}, bias={self.bias is not None}, "
                f"partially_freeze={self.partially_freeze}")


def freeze_model(model: nn.Module, module_exceptions=()) -> nn.Module:
    """Freeze every parameter of `model` except those of the module kinds named in `module_exceptions`
    ("LayerNorm", "Linear", "Embedding"), which are made trainable."""
    kinds = {"LayerNorm": nn.LayerNorm, "Linear": nn.Linear, "Embedding": nn.Embedding}
    unknown = [m for m in module_exceptions if m not in kinds]
    if unknown:
        raise ValueError(f"module_exceptions may name {sorted(kinds)}, got {unknown}")
    keep = tuple(kinds[m] for m in module_exceptions)
    for module in model.modules():  # parents before children: an exception inside a frozen block stays trainable
        module.requires_grad_(bool(keep) and isinstance(module, keep))
    return model


# --------------------------------------------------------------------------------------------------
# Layers


def text_config(config: IdeficsConfig) -> LlamaConfig:
    """The decoder layers' settings as a LlamaConfig: multi-head attention without biases, rope base 10000."""
    text = LlamaConfig(vocab_size=config.vocab_size, hidden_size=config.hidden_size,
                       intermediate_size=config.intermediate_size, num_hidden_layers=config.num_hidden_layers,
                       num_attention_heads=config.num_attention_heads, hidden_act=config.hidden_act,
                       rms_norm_eps=config.rms_norm_eps, attention_dropout=config.dropout)
    text._attn_implementation = config._attn_implementation
    return text


class IdeficsDecoderLayer(LlamaDecoderLayer):
    """Llama's decoder layer, with dropout (config.dropout) on both residual branches in training."""

    def __init__(self, config: LlamaConfig, layer_idx: int, dropout: float = 0.0):
        super().__init__(config, layer_idx)
        self.dropout = dropout

    def forward(self, x, step: DecoderStep, head_mask=None, output_attentions=False):
        if not (self.training and self.dropout):
            return super().forward(x, step, head_mask, output_attentions)
        attn, weights = self.self_attn(self.input_layernorm(x), step, head_mask, output_attentions)
        x = x + F.dropout(attn, self.dropout)
        return x + F.dropout(self.mlp(self.post_attention_layernorm(x)), self.dropout), weights


class IdeficsCrossAttention(nn.Module):
    """Text queries (B, T, C) attend to image states (B, N*L, E): q_proj (C -> C), k_proj, v_proj (E -> C),
    o_proj, no positions; with qk_layer_norms an RMSNorm on q and k per head."""

    def __init__(self, config: IdeficsConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        if config.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size must be divisible by num_heads (got `hidden_size`: {config.hidden_size} "
                             f"and `num_heads`: {self.num_heads}).")
        head_dim = config.hidden_size // self.num_heads
        self.scale = head_dim ** -0.5
        self.dropout = config.dropout
        self.impl = config._attn_implementation
        width, image_width = config.hidden_size, config.vision_config.embed_dim
        self.q_proj = nn.Linear(width, width, bias=False)
        self.k_proj = nn.Linear(image_width, width, bias=False)
        self.v_proj = nn.Linear(image_width, width, bias=False)
        self.o_proj = nn.Linear(width, width, bias=False)
        self.qk_layer_norms = config.qk_layer_norms
        if self.qk_layer_norms:
            self.q_layer_norm = LlamaRMSNorm(head_dim, eps=config.rms_norm_eps)
            self.k_layer_norm = LlamaRMSNorm(head_dim, eps=config.rms_norm_eps)

    def keys_values(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """images (B, N*L, E) -> k (normed when qk_layer_norms), v: (B, H, N*L, D)."""
        k = split_heads(self.k_proj(images), self.num_heads)
        return (self.k_layer_norm(k) if self.qk_layer_norms else k), split_heads(self.v_proj(images), self.num_heads)

    def forward(self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        q = split_heads(self.q_proj(x), self.num_heads)  # (B, H, T, D)
        if self.qk_layer_norms:
            q = self.q_layer_norm(q)
        out, _ = attend(q, k, v, mask, scale=self.scale, dropout=self.dropout if self.training else 0.0, impl=self.impl)
        return self.o_proj(merge_heads(out))  # (B, T, C)


class IdeficsGatedCrossAttentionLayer(nn.Module):
    """Cross-attention to the images and an MLP, each added through a tanh gate (alpha_cross_attn,
    alpha_dense) that starts closed with alpha_initializer "zeros"; see the module docstring."""

    def __init__(self, config: IdeficsConfig, layer_idx: int = 0):
        super().__init__()
        self.layer_idx = layer_idx  # which cross-attention layer: its keys / values in a generation cache
        self.hidden_size = config.hidden_size
        self.alpha_initializer, self.alpha_type = config.alpha_initializer, config.alpha_type
        self.alphas_initializer_range = config.alphas_initializer_range
        self.cross_attn = IdeficsCrossAttention(config)
        self.mlp = LlamaMLP(config)
        self.input_layernorm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.dropout = config.dropout
        shape = {"vector": (1, 1, self.hidden_size), "float": (1,)}.get(self.alpha_type)
        if shape is None:
            raise ValueError(f"Unknown value for `alpha_type` ({self.alpha_type}); use 'float' or 'vector'")
        self.alpha_cross_attn = nn.Parameter(torch.empty(shape))
        self.alpha_dense = nn.Parameter(torch.empty(shape))
        self.reset_alphas()

    @torch.no_grad()
    def reset_alphas(self) -> None:
        """The gates' initial values per alpha_initializer ("normal": N(0, alphas_initializer_range))."""
        for alpha in (self.alpha_cross_attn, self.alpha_dense):
            if alpha.is_meta:
                continue
            if self.alpha_initializer in ("zeros", "ones"):
                alpha.fill_(1.0 if self.alpha_initializer == "ones" else 0.0)
            elif self.alpha_initializer in ("normal", "gaussian", "random"):
                alpha.normal_(0.0, self.alphas_initializer_range)
            else:
                raise NotImplementedError(f"Alpha initialization scheme {self.alpha_initializer} not yet implemented!")

    def forward(self, x: torch.Tensor, step: DecoderStep) -> torch.Tensor:
        images: ImageContext = step.context["images"]
        compute = functools.partial(self.cross_attn.keys_values, images.states)
        cross_kv = getattr(step.cache, "cross_kv", None)  # generate()'s cache keeps them from the first step
        k, v = compute() if cross_kv is None else cross_kv(self.layer_idx, compute)
        h = self.cross_attn(self.input_layernorm(x), k, v, images.mask)
        h = F.dropout(h, self.dropout, self.training)
        if images.gate is not None:  # tokens that see no image get nothing from the cross-attention
            h = h.masked_fill(~images.gate, 0.0)
        x = x + torch.tanh(self.alpha_cross_attn) * h
        h = F.dropout(self.mlp(self.post_attention_layernorm(x)), self.dropout, self.training)
        return x + torch.tanh(self.alpha_dense) * h
