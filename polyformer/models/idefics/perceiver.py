"""IDEFICS's perceiver resampler (Flamingo): a fixed set of learned latents cross-attends to each image's
encoder states and returns `resampler_n_latents` tokens per image, whatever the image's length.

Notation: B images, S image tokens, R latents, C width (the vision embed_dim), H heads, D head dim.

    latents (R, C) -> for each block:  latents += attn(context, latents);  latents += mlp(latents)
                   -> layer_norm -> (B, R, C)

The attention's keys and values are the context and the latents together. Module attributes are the
reference's checkpoint keys (perceiver_resampler.blocks.0.0.q_proj: block 0, its attention; .blocks.0.1:
its MLP). Every LayerNorm has eps 1e-5.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ...pt.attention import attend, merge_heads, split_heads


class IdeficsPerceiverAttention(nn.Module):
    """Latents (B, R, C) attend to [context; latents] (B, S + R, C): normed inputs, q/k/v without biases,
    optional LayerNorm on q and k per head, output_proj."""

    def __init__(self, embed_dim: int, n_heads: int, *, head_dim: int, qk_layer_norms: bool, impl: str = "sdpa"):
        super().__init__()
        self.embed_dim, self.n_heads, self.head_dim = embed_dim, n_heads, head_dim
        self.qk_layer_norms = qk_layer_norms
        self.impl = impl
        self.context_layer_norm = nn.LayerNorm(embed_dim)
        self.latents_layer_norm = nn.LayerNorm(embed_dim)
        if qk_layer_norms:
            self.q_layer_norm = nn.LayerNorm(head_dim)
            self.k_layer_norm = nn.LayerNorm(head_dim)
        self.qk_scale = head_dim ** -0.5
        self.q_proj = nn.Linear(embed_dim, n_heads * head_dim, bias=False)
        self.k_proj = nn.Linear(embed_dim, n_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(embed_dim, n_heads * head_dim, bias=False)
        self.output_proj = nn.Linear(n_heads * head_dim, embed_dim, bias=False)

    def forward(self, context: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        latents = self.latents_layer_norm(latents)
        both = torch.cat([self.context_layer_norm(context), latents], dim=-2)  # (B, S + R, C)
        q = split_heads(self.q_proj(latents), self.n_heads)  # (B, H, R, D)
        k, v = split_heads(self.k_proj(both), self.n_heads), split_heads(self.v_proj(both), self.n_heads)
        if self.qk_layer_norms:
            q, k = self.q_layer_norm(q), self.k_layer_norm(k)
        out, _ = attend(q, k, v, None, scale=self.qk_scale, impl=self.impl)
        return self.output_proj(merge_heads(out))  # (B, R, C)


class IdeficsMLP(nn.Module):
    """ln -> fc -> ReLU -> c_proj, no biases (the perceiver's feed-forward; 4 x embed_dim wide)."""

    def __init__(self, intermediate_size: int, config):
        super().__init__()
        self.embed_dim = config.vision_config.embed_dim
        self.ln = nn.LayerNorm(self.embed_dim)
        self.fc = nn.Linear(self.embed_dim, intermediate_size, bias=False)
        self.act = nn.ReLU()
        self.c_proj = nn.Linear(intermediate_size, self.embed_dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(self.act(self.fc(self.ln(x))))


class IdeficsPerceiverResampler(nn.Module):
    """context (B, S, C) -> (B, n_latents, C). Arguments as the reference's: the IdeficsConfig, the width,
    depth (blocks), n_heads, head_dim, n_latents."""

    def __init__(self, config, *, embed_dim: int, depth: int, n_heads: int, head_dim: int, n_latents: int):
        super().__init__()
        self.embed_dim, self.n_heads, self.head_dim, self.n_latents = embed_dim, n_heads, head_dim, n_latents
        self.qk_layer_norms = config.perceiver_config.qk_layer_norms_perceiver
        self.latents = nn.Parameter(torch.randn(n_latents, embed_dim))
        self.intermediate_dim = config.vision_config.embed_dim * 4
        impl = config._attn_implementation
        self.blocks = nn.ModuleList(
            nn.ModuleList([IdeficsPerceiverAttention(embed_dim, n_heads, head_dim=head_dim,
                                                     qk_layer_norms=self.qk_layer_norms, impl=impl),
                           IdeficsMLP(self.intermediate_dim, config)])
            for _ in range(depth))
        self.layer_norm = nn.LayerNorm(embed_dim)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        latents = self.latents.expand(context.shape[0], -1, -1)  # (B, R, C)
        for attention, mlp in self.blocks:
            latents = attention(context, latents) + latents
            latents = mlp(latents) + latents
        return self.layer_norm(latents)
