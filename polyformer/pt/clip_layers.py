"""CLIP's pre-LayerNorm encoder and its causal text tower, under CLIP's checkpoint names.

GroupViT's text tower is this text tower, and its vision stages are stacks of these encoder layers.

Notation: B batch, T query length, S key length, C width (hidden_size), H heads, D head dim.

    layers.N:  x = x + self_attn(layer_norm1(x))        self_attn.{q,k,v,out}_proj
               x = x + mlp(layer_norm2(x))              mlp.fc1 -> activation -> mlp.fc2

    text tower: embeddings.{token_embedding, position_embedding} --encoder.layers (causal, padded keys
    masked)--> final_layer_norm --the state at the end-of-text token--> pooler_output

A config needs hidden_size, intermediate_size, num_attention_heads, attention_dropout, hidden_act and
layer_norm_eps; the text tower also vocab_size, max_position_embeddings and eos_token_id.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..outputs import BaseModelOutputWithPooling
from . import inputs
from .attention import attend, merge_heads, split_heads
from .layers import activation, run_layers
from .masks import causal_mask

LEGACY_EOS_TOKEN_ID = 2  # configs saved before transformers 4.31 carry eos_token_id=2: pool at the highest id


class CLIPAttention(nn.Module):
    """Multi-head attention; keys and values come from `context` when given (cross-attention)."""

    def __init__(self, config):
        super().__init__()
        self.config = config  # (the init reads the tower's width and depth)
        width, self.num_heads = config.hidden_size, config.num_attention_heads
        if width % self.num_heads:
            raise ValueError(f"hidden_size={width} must be divisible by num_attention_heads={self.num_heads}")
        self.embed_dim = width
        self.scale = (width // self.num_heads) ** -0.5
        self.dropout = config.attention_dropout
        self.impl = config._attn_implementation
        self.k_proj, self.v_proj, self.q_proj, self.out_proj = (nn.Linear(width, width) for _ in range(4))

    def forward(self, x, mask=None, is_causal=False, head_mask=None, output_attentions=False, context=None):
        """x (B, T, C); context (B, S, C) or None (S = T); mask additive, broadcastable to (B, H, T, S)."""
        source = x if context is None else context
        q, k, v = (split_heads(proj(t), self.num_heads)
                   for proj, t in ((self.q_proj, x), (self.k_proj, source), (self.v_proj, source)))  # (B, H, ., D)
        out, weights = attend(q, k, v, mask, scale=self.scale, dropout=self.dropout if self.training else 0.0,
                              head_mask=head_mask, need_weights=output_attentions, impl=self.impl, is_causal=is_causal)
        return self.out_proj(merge_heads(out)), weights  # (B, T, C), (B, H, T, S) | None


class CLIPMLP(nn.Module):
    """fc1 -> activation -> fc2; widths default to hidden_size -> intermediate_size -> hidden_size."""

    def __init__(self, config, hidden_size: Optional[int] = None, intermediate_size: Optional[int] = None,
                 output_size: Optional[int] = None):
        super().__init__()
        self.config = config
        hidden_size = hidden_size or config.hidden_size
        self.activation_fn = activation(config.hidden_act)
        self.fc1 = nn.Linear(hidden_size, intermediate_size or config.intermediate_size)
        self.fc2 = nn.Linear(self.fc1.out_features, output_size or hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(x)))


class CLIPEncoderLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.self_attn = CLIPAttention(config)
        self.layer_norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = CLIPMLP(config)
        self.layer_norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x, mask=None, is_causal=False, head_mask=None, output_attentions=False):
        h, weights = self.self_attn(self.layer_norm1(x), mask, is_causal, head_mask=head_mask,
                                    output_attentions=output_attentions)
        x = x + h
        return x + self.mlp(self.layer_norm2(x)), weights


class CLIPEncoder(nn.Module):
    """`num_layers` CLIPEncoderLayers; forward returns (x, hidden_states | None, attentions | None)."""

    def __init__(self, config, num_layers: Optional[int] = None):
        super().__init__()
        n = config.num_hidden_layers if num_layers is None else num_layers
        self.layers = nn.ModuleList(CLIPEncoderLayer(config) for _ in range(n))
        self.gradient_checkpointing = False

    def forward(self, x, mask=None, is_causal=False, output_hidden_states=False, output_attentions=False):
        return run_layers(self.layers, x, mask, is_causal, output_hidden_states=output_hidden_states,
                          output_attentions=output_attentions, gradient_checkpointing=self.gradient_checkpointing)


class CLIPTextEmbeddings(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.token_embedding = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embedding = nn.Embedding(config.max_position_embeddings, config.hidden_size)

    def forward(self, input_ids: torch.Tensor, position_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[-1], device=input_ids.device)[None]
        return self.token_embedding(input_ids) + self.position_embedding(position_ids)  # (B, T, C)


class CLIPTextTransformer(nn.Module):
    """The causal text tower: (B, T) ids -> last_hidden_state (B, T, C) after the final LayerNorm and
    pooler_output (B, C), the state at each row's end-of-text token (see `end_of_text_pool`)."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.embeddings = CLIPTextEmbeddings(config)
        self.encoder = CLIPEncoder(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, output_attentions=False,
                output_hidden_states=False) -> BaseModelOutputWithPooling:
        check_text_inputs(input_ids, attention_mask, position_ids, self.config)
        x = self.embeddings(input_ids, position_ids)
        mask, is_causal = causal_mask(attention_mask, input_ids.shape[1], 0, x.dtype, device=x.device, stack=True)
        x, hidden_states, attentions = self.encoder(x, mask, is_causal, output_hidden_states=output_hidden_states,
                                                    output_attentions=output_attentions)
        x = self.final_layer_norm(x)
        pooled = end_of_text_pool(x, input_ids, self.config.eos_token_id)
        return BaseModelOutputWithPooling(x, pooled, hidden_states, attentions)


def end_of_text_pool(x: torch.Tensor, input_ids: torch.Tensor, eos_token_id: Optional[int]) -> torch.Tensor:
    """x (B, T, C) -> (B, C) at each row's first eos_token_id (position 0 when it has none), as 4.37 does;
    for legacy configs (eos_token_id=2) at each row's highest id instead."""
    ids = input_ids.to(device=x.device, dtype=torch.int)
    index = ids.argmax(-1) if eos_token_id == LEGACY_EOS_TOKEN_ID else (ids == eos_token_id).int().argmax(-1)
    return x[torch.arange(x.shape[0], device=x.device), index]


def check_text_inputs(input_ids, attention_mask, position_ids, config) -> None:
    """Bad text input fails here, naming the argument."""
    if input_ids is None:
        raise ValueError("You have to specify input_ids")
    inputs.check_ids(input_ids, config.vocab_size)
    length, limit = input_ids.shape[1], config.max_position_embeddings
    if length > limit:  # said in tokens: CLIP's texts are short
        raise ValueError(f"input_ids has {length} tokens, more than max_position_embeddings={limit}; truncate the "
                         f"text (tokenizer(..., truncation=True, max_length={limit}))")
    inputs.check_mask(attention_mask, input_ids.shape)
    if position_ids is not None:
        inputs.check_positions(position_ids, config.max_position_embeddings, length=length)


def contrastive_loss(logits_per_text: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric loss on (N, N) text-image logits where text i goes with image i: the mean of the
    text->image and image->text cross-entropies."""
    n_texts, n_images = logits_per_text.shape
    if n_texts != n_images:
        raise ValueError(f"return_loss pairs text i with image i: it needs as many texts as images, got {n_texts} "
                         f"texts and {n_images} images")
    labels = torch.arange(n_texts, device=logits_per_text.device)
    return (F.cross_entropy(logits_per_text, labels) + F.cross_entropy(logits_per_text.t(), labels)) / 2.0


@torch.no_grad()
def init_clip_weights(module: nn.Module, factor: float) -> bool:
    """CLIP's init of its own modules (normal, scaled by the tower's width and depth); False if `module`
    is not one of them."""
    if isinstance(module, CLIPTextEmbeddings):
        module.token_embedding.weight.normal_(0.0, factor * 0.02)
        module.position_embedding.weight.normal_(0.0, factor * 0.02)
    elif isinstance(module, CLIPAttention):
        depth = module.config.num_hidden_layers
        for proj in (module.q_proj, module.k_proj, module.v_proj):
            proj.weight.normal_(0.0, module.embed_dim ** -0.5 * (2 * depth) ** -0.5 * factor)
        module.out_proj.weight.normal_(0.0, module.embed_dim ** -0.5 * factor)
    elif isinstance(module, CLIPMLP):
        width, depth = module.config.hidden_size, module.config.num_hidden_layers
        module.fc1.weight.normal_(0.0, (2 * width) ** -0.5 * factor)
        module.fc2.weight.normal_(0.0, width ** -0.5 * (2 * depth) ** -0.5 * factor)
    else:
        return False
    return True
