"""GroupViT's vision tower: patches, then stages of CLIP encoder layers that end in grouping blocks.

Notation: B images, C width, P patches, L tokens entering a stage, G a stage's group tokens, O its output groups.

    pixels (B, 3, H, W) --patch conv, LayerNorm, + positions--> tokens (B, P, C)
    stage i:  [tokens ; group tokens (B, G, C)] --depths[i] CLIP encoder layers--> split
              --grouping block (GroupViTTokenAssign)--> (B, O, C): every token is assigned to one group (hard
              argmax, straight-through gradient; gumbel noise in training), a group being the
              assignment-weighted mean of its tokens plus its own projection. The next stage's group tokens
              are learnt ones plus a token-mixing MLP of this stage's. A stage without group tokens only runs
              its layers.
    --LayerNorm--> last_hidden_state (B, O_last, C) --mean--> pooler_output (B, C)

Segmentation chains the stages' soft assignments from patches to final groups (`grouping_from_attentions`).
"""

from __future__ import annotations

import collections.abc
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...outputs import BaseModelOutputWithPooling
from ...pt.clip_layers import CLIPAttention, CLIPEncoderLayer, CLIPMLP
from ...pt.layers import resize_position_grid, run_layers
from .configuration import GroupViTVisionConfig


# --- assignment -----------------------------------------------------------------------------------
def hard_softmax(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """One-hot at the softmax's argmax along `dim`, carrying the softmax's gradient (straight-through)."""
    soft = logits.softmax(dim)
    hard = torch.zeros_like(logits).scatter_(dim, soft.max(dim, keepdim=True)[1], 1.0)
    return hard - soft.detach() + soft


def gumbel_hard_softmax(logits: torch.Tensor, dim: int) -> torch.Tensor:
    """`hard_softmax` of logits + Gumbel(0, 1) noise (temperature 1), drawn from the generator as
    torch.distributions.Gumbel draws it, so a seeded run repeats the reference's."""
    info = torch.finfo(logits.dtype)
    low, high = (torch.tensor(v, dtype=logits.dtype, device=logits.device) for v in (info.tiny, 1 - info.eps))
    uniform = low + torch.rand(logits.shape, dtype=logits.dtype, device=logits.device) * (high - low)
    return hard_softmax(logits - torch.log(-torch.log(uniform)), dim)


class GroupViTAssignAttention(nn.Module):
    """Single-head attention of groups (queries) over tokens in which each token picks one group:
    the softmax runs over the groups, then each group averages the tokens it won."""

    def __init__(self, config: GroupViTVisionConfig):
        super().__init__()
        width = config.hidden_size
        self.scale = width ** -0.5
        self.q_proj, self.k_proj, self.v_proj, self.proj = (nn.Linear(width, width) for _ in range(4))
        self.assign_eps = config.assign_eps

    def forward(self, groups: torch.Tensor, tokens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """groups (B, O, C), tokens (B, L, C) -> new groups (B, O, C), soft assignment (B, O, L)."""
        scores = (self.q_proj(groups) @ self.k_proj(tokens).transpose(-2, -1)) * self.scale  # (B, O, L)
        assign = gumbel_hard_softmax(scores, dim=-2) if self.training else hard_softmax(scores, dim=-2)
        assign = assign / (assign.sum(dim=-1, keepdim=True) + self.assign_eps)
        return self.proj(assign @ self.v_proj(tokens)), scores.softmax(dim=-2)


class GroupViTMixerMLP(CLIPMLP):
    """An MLP across tokens instead of channels: (B, G, C) -> (B, O, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class GroupViTCrossAttentionLayer(nn.Module):
    """Groups attend to the tokens: x = groups + attn; x = x + mlp(norm2(x)); norm_post(x)."""

    def __init__(self, config: GroupViTVisionConfig):
        super().__init__()
        self.attn = CLIPAttention(config)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = CLIPMLP(config)
        self.norm_post = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, groups: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        x = groups + self.attn(groups, context=tokens)[0]
        return self.norm_post(x + self.mlp(self.norm2(x)))


class GroupViTTokenAssign(nn.Module):
    """The grouping block: G group tokens -> O output groups, each the merge of the tokens assigned to it."""

    def __init__(self, config: GroupViTVisionConfig, num_group_token: int, num_output_group: int):
        super().__init__()
        width, ratio = config.hidden_size, config.assign_mlp_ratio
        ratio = ratio if isinstance(ratio, collections.abc.Iterable) else (ratio, ratio)
        tokens_dim, channels_dim = (int(r * width) for r in ratio)
        self.norm_tokens = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.mlp_inter = GroupViTMixerMLP(config, num_group_token, tokens_dim, num_output_group)
        self.norm_post_tokens = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.norm_x = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.pre_assign_attn = GroupViTCrossAttentionLayer(config)
        self.assign = GroupViTAssignAttention(config)
        self.norm_new_x = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.mlp_channels = CLIPMLP(config, width, channels_dim, width)

    def forward(self, tokens: torch.Tensor, group_tokens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, L, C), group_tokens (B, G, C) -> groups (B, O, C), soft assignment (B, O, L)."""
        tokens = self.norm_x(tokens)
        groups = self.norm_post_tokens(self.mlp_inter(self.norm_tokens(group_tokens)))  # (B, O, C)
        groups = self.pre_assign_attn(groups, tokens)
        merged, attention = self.assign(groups, tokens)
        merged = merged + groups
        return merged + self.mlp_channels(self.norm_new_x(merged)), attention


# --- vision tower ---------------------------------------------------------------------------------
def _pair(x) -> Tuple[int, int]:
    return tuple(x) if isinstance(x, collections.abc.Iterable) else (x, x)


class GroupViTPatchEmbeddings(nn.Module):
    def __init__(self, config: GroupViTVisionConfig):
        super().__init__()
        self.image_size, self.patch_size = _pair(config.image_size), _pair(config.patch_size)
        self.num_patches = (self.image_size[0] // self.patch_size[0]) * (self.image_size[1] // self.patch_size[1])
        self.projection = nn.Conv2d(config.num_channels, config.hidden_size, self.patch_size, self.patch_size)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.projection(pixel_values).flatten(2).transpose(1, 2)  # (B, P, C)


class GroupViTVisionEmbeddings(nn.Module):
    """patches -> LayerNorm -> + learnt positions (bicubically resized for other image sizes) -> dropout."""

    def __init__(self, config: GroupViTVisionConfig):
        super().__init__()
        self.patch_embeddings = GroupViTPatchEmbeddings(config)
        self.position_embeddings = nn.Parameter(torch.zeros(1, self.patch_embeddings.num_patches, config.hidden_size))
        self.dropout = nn.Dropout(config.dropout)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def interpolate_pos_encoding(self, embeddings: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The (1, P0, C) table resized to the patch grid of a height x width image, as 4.37 does it: a
        square table, scale factors (patches + 0.1) / side, bicubic; unchanged for a square image of P0 patches."""
        table = self.position_embeddings
        if embeddings.shape[1] == table.shape[1] and height == width:
            return table
        if math.isqrt(table.shape[1]) ** 2 != table.shape[1]:
            raise ValueError(f"interpolate_pos_encoding needs a square grid of position embeddings, this model has "
                             f"{table.shape[1]} (image_size {self.patch_embeddings.image_size})")
        return resize_position_grid(table, height, width, self.patch_embeddings.patch_size)

    def forward(self, pixel_values: torch.Tensor, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        x = self.layernorm(self.patch_embeddings(pixel_values))  # (B, P, C)
        height, width = pixel_values.shape[-2:]
        positions = self.interpolate_pos_encoding(x, height, width) if interpolate_pos_encoding else self.position_embeddings
        return self.dropout(x + positions)


class GroupViTStage(nn.Module):
    """depth encoder layers over [tokens ; group tokens], then (with group tokens) the grouping block."""

    def __init__(self, config: GroupViTVisionConfig, depth: int, num_prev_group_token: int, num_group_token: int,
                 num_output_group: int):
        super().__init__()
        self.num_group_token = num_group_token
        self.group_token = nn.Parameter(torch.zeros(1, num_group_token, config.hidden_size)) if num_group_token else None
        self.layers = nn.ModuleList(CLIPEncoderLayer(config) for _ in range(depth))
        self.downsample = GroupViTTokenAssign(config, num_group_token, num_output_group) if num_group_token else None
        self.group_projector = None
        if num_prev_group_token > 0 and num_group_token > 0:
            self.group_projector = nn.Sequential(
                nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps),
                GroupViTMixerMLP(config, num_prev_group_token, config.hidden_size // 2, num_group_token))
        self.gradient_checkpointing = False

    def forward(self, x: torch.Tensor, prev_group_token: Optional[torch.Tensor]):
        """x (B, L, C) -> (x (B, O, C) or (B, L, C) without grouping, group tokens (B, G, C) | None,
        soft assignment (B, O, L) | None)."""
        if self.group_token is None:
            return run_layers(self.layers, x, None, False, gradient_checkpointing=self.gradient_checkpointing)[0], None, None
        group = self.group_token.expand(x.shape[0], -1, -1)
        if self.group_projector is not None:
            group = group + self.group_projector(prev_group_token)
        x = run_layers(self.layers, torch.cat([x, group], dim=1), None, False,
                       gradient_checkpointing=self.gradient_checkpointing)[0]
        x, group = x[:, : -self.num_group_token], x[:, -self.num_group_token:]
        x, attention = self.downsample(x, group)
        return x, group, attention


class GroupViTVisionEncoder(nn.Module):
    def __init__(self, config: GroupViTVisionConfig):
        super().__init__()
        depths, groups, outputs = config.depths, config.num_group_tokens, config.num_output_groups
        if not len(depths) == len(groups) == len(outputs):
            raise ValueError(f"depths, num_group_tokens and num_output_groups need one entry per stage, got "
                             f"{depths}, {groups}, {outputs}")
        for i in range(1, len(depths)):
            if groups[i] and outputs[i - 1] and groups[i - 1] != outputs[i - 1]:
                raise ValueError(f"stage {i} mixes the {groups[i - 1]} group tokens of stage {i - 1} as "
                                 f"num_output_groups[{i - 1}]={outputs[i - 1]} tokens: the two must be equal")
        self.stages = nn.ModuleList(
            GroupViTStage(config, depths[i], outputs[i - 1] if i else 0, groups[i], outputs[i]) for i in range(len(depths)))

    def forward(self, x: torch.Tensor, output_hidden_states: bool = False, output_attentions: bool = False):
        """-> (x, every stage's input and the last output | None, the grouping stages' assignments | None)."""
        hidden_states, attentions, group = (), (), None
        for stage in self.stages:
            hidden_states += (x,)
            x, group, attention = stage(x, group)
            if attention is not None:
                attentions += (attention,)
        return x, hidden_states + (x,) if output_hidden_states else None, attentions if output_attentions else None


class GroupViTVisionTransformer(nn.Module):
    def __init__(self, config: GroupViTVisionConfig):
        super().__init__()
        self.config = config
        self.embeddings = GroupViTVisionEmbeddings(config)
        self.encoder = GroupViTVisionEncoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, pixel_values=None, output_attentions=False, output_hidden_states=False,
                interpolate_pos_encoding=False) -> BaseModelOutputWithPooling:
        check_pixels(pixel_values, self.config, interpolate_pos_encoding)
        x = self.embeddings(pixel_values.to(self.embeddings.position_embeddings.dtype), interpolate_pos_encoding)
        x, hidden_states, attentions = self.encoder(x, output_hidden_states=output_hidden_states,
                                                    output_attentions=output_attentions)
        x = self.layernorm(x)  # (B, O, C)
        return BaseModelOutputWithPooling(x, x.mean(dim=1), hidden_states, attentions)


def check_pixels(pixel_values, config: GroupViTVisionConfig, interpolate_pos_encoding: bool) -> None:
    """Bad images fail here, naming the argument."""
    if pixel_values is None:
        raise ValueError("You have to specify pixel_values")
    if not isinstance(pixel_values, torch.Tensor) or not pixel_values.is_floating_point():
        what = f"dtype {pixel_values.dtype}" if isinstance(pixel_values, torch.Tensor) else type(pixel_values).__name__
        raise TypeError(f"pixel_values must be a floating-point torch.Tensor of normalised pixels (e.g. from "
                        f"CLIPImageProcessor), got {what}")
    if pixel_values.dim() != 4:
        hint = "; add the batch dimension with pixel_values[None]" if pixel_values.dim() == 3 else ""
        raise ValueError(f"pixel_values must have 4 dimensions (batch_size, num_channels, height, width), got shape "
                         f"{tuple(pixel_values.shape)}{hint}")
    channels, height, width = pixel_values.shape[1:]
    if channels != config.num_channels:
        raise ValueError(f"pixel_values has {channels} channels, the model takes num_channels={config.num_channels} "
                         f"(channels first: (batch_size, num_channels, height, width))")
    (rows, cols), (patch_h, patch_w) = _pair(config.image_size), _pair(config.patch_size)
    if not interpolate_pos_encoding and (height, width) != (rows, cols):
        raise ValueError(f"Input image size ({height}*{width}) doesn't match model ({rows}*{cols}). Resize the images "
                         "(CLIPImageProcessor) or pass interpolate_pos_encoding=True.")
    if height < patch_h or width < patch_w:
        raise ValueError(f"pixel_values of {height}x{width} pixels is smaller than one {patch_h}x{patch_w} patch")


# --- segmentation -------------------------------------------------------------------------------------
def resize_attention_map(attentions: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, G, h*w) -> (B, G, height, width), bilinear: the feature grid's shape is found from the
    image's aspect ratio as the reference finds it."""
    batch, groups, cells = attentions.shape
    scale = (height * width // cells) ** 0.5
    if height > width:
        feat_width = int(round(width / scale))
        feat_height = cells // feat_width
    else:
        feat_height = int(round(height / scale))
        feat_width = cells // feat_height
    maps = attentions.reshape(batch, groups, feat_height, feat_width)
    return F.interpolate(maps, size=(height, width), mode="bilinear", align_corners=False)


@torch.no_grad()
def grouping_from_attentions(attentions: Tuple[torch.Tensor, ...], size: Tuple[int, int]) -> torch.Tensor:
    """The stages' soft assignments (B, O_i, L_i) chained from the patches to the final groups and spread
    over the image: (B, O_last, height, width). No gradient, as in the reference."""
    if not attentions:
        raise ValueError("output_segmentation needs a grouping stage (num_group_tokens > 0 somewhere); this vision "
                         "tower has none")
    assign = attentions[0].transpose(1, 2).contiguous()  # (B, P, O_1)
    for stage in attentions[1:]:
        assign = assign @ stage.transpose(1, 2).contiguous()  # (B, P, O_i)
    return resize_attention_map(assign.transpose(1, 2).contiguous(), *size)
