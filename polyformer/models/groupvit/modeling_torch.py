"""GroupViT in PyTorch (Xu et al., 2022): image tokens grouped into segments, learnt from text alone.

Notation: B images, N texts, T text length, C width, P patches, L tokens entering a stage, G a stage's group
tokens, O its output groups, D projection_dim, E projection_intermediate_dim.

    vision tower (vision_model.*)
      pixels (B, 3, H, W) --16x16 patch conv, LayerNorm, + positions--> tokens (B, P, C)
      stage i:  [tokens ; group tokens (B, G, C)] --depths[i] CLIP encoder layers--> split
                --grouping block--> (B, O, C): every token is assigned to one group (hard argmax,
                straight-through gradient; gumbel noise in training); a group is the assignment-weighted
                mean of its tokens plus its own projection. The next stage's group tokens are learnt ones
                plus a token-mixing MLP of this stage's. A stage without group tokens only runs its layers.
      --LayerNorm--> last_hidden_state (B, O_last, C) --mean--> pooler_output (B, C)
    text tower (text_model.*): CLIP's (pt/clip_layers.py)
    GroupViTModel: each pooled output --Linear, BatchNorm, ReLU, Linear--> (., D), L2-normalised;
      logits_per_text (N, B) = exp(logit_scale) * text @ image^T
      segmentation: the final groups projected the same way, scored against every text, spread over the
      pixels through the product of the stages' soft assignments -> (B, N, H, W)

Module attributes are the reference's checkpoint keys (vision_model.encoder.stages.0.downsample.assign.q_proj, ...).
"""

from __future__ import annotations

import collections.abc
import math
from dataclasses import dataclass
from typing import Any, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...outputs import BaseModelOutputWithPooling, ModelOutput, finish
from ...pt.clip_layers import CLIPAttention, CLIPEncoderLayer, CLIPMLP, CLIPTextTransformer, contrastive_loss
from ...pt.clip_layers import init_clip_weights
from ...pt.layers import run_layers
from ...pt.modeling import PreTrainedModel
from .configuration import GroupViTConfig, GroupViTTextConfig, GroupViTVisionConfig


@dataclass
class GroupViTModelOutput(ModelOutput):
    """`logits_per_image` (B, N) and `logits_per_text` (N, B): scaled cosine similarities; `loss`: CLIP's
    contrastive loss (return_loss); `segmentation_logits` (B, N, H, W) (output_segmentation); `text_embeds`
    (N, D), `image_embeds` (B, D): normalised; the two towers' outputs. `to_tuple()` turns those into tuples."""

    loss: Any = None
    logits_per_image: Any = None
    logits_per_text: Any = None
    segmentation_logits: Any = None
    text_embeds: Any = None
    image_embeds: Any = None
    text_model_output: Any = None
    vision_model_output: Any = None

    def to_tuple(self) -> Tuple[Any, ...]:
        return tuple(v.to_tuple() if isinstance(v, ModelOutput) else v for v in super().to_tuple())


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
    low, high = torch.tensor(info.tiny, dtype=logits.dtype), torch.tensor(1 - info.eps, dtype=logits.dtype)
    uniform = low + torch.rand(logits.shape, dtype=logits.dtype, device=logits.device) * (high - low).to(logits.device)
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
        self.patch_size = config.patch_size

    def interpolate_pos_encoding(self, embeddings: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """The (1, P0, C) table resized to the patch grid of a height x width image, as 4.37 does it: a
        square table, scale factors (patches + 0.1) / side, bicubic; unchanged for a square image of P0 patches."""
        table = self.position_embeddings
        if embeddings.shape[1] == table.shape[1] and height == width:
            return table
        side, width_c = math.sqrt(table.shape[1]), table.shape[-1]
        rows, cols = height // self.patch_size + 0.1, width // self.patch_size + 0.1
        grid = table.reshape(1, int(side), int(side), width_c).permute(0, 3, 1, 2)  # (1, C, side, side)
        grid = F.interpolate(grid, scale_factor=(rows / side, cols / side), mode="bicubic", align_corners=False)
        return grid.permute(0, 2, 3, 1).reshape(1, -1, width_c)

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
        x, hidden_states, attentions = self.encoder(x, output_hidden_states, output_attentions)
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
    assign = attentions[0].transpose(1, 2).contiguous()  # (B, P, O_1)
    for stage in attentions[1:]:
        assign = assign @ stage.transpose(1, 2).contiguous()  # (B, P, O_i)
    return resize_attention_map(assign.transpose(1, 2).contiguous(), *size)


def projection_head(width: int, inner: int, out: int) -> nn.Sequential:
    """Linear -> BatchNorm -> ReLU -> Linear (checkpoint names .0, .1, .3)."""
    return nn.Sequential(nn.Linear(width, inner), nn.BatchNorm1d(inner), nn.ReLU(inplace=True), nn.Linear(inner, out))


def normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


# --- models -------------------------------------------------------------------------------------------
class GroupViTPreTrainedModel(PreTrainedModel):
    config_class = GroupViTConfig
    base_model_prefix = "groupvit"
    _supports_flash_attn_2 = False  # cross-attention of groups over tokens; 4.37's GroupViT is eager only

    # Attention defaults to "eager", the reference's only path: the grouping takes an argmax, which the last-bit
    # differences of "sdpa" (faster, opt in with attn_implementation="sdpa") could flip on near ties.
    def __init__(self, config, *args, **kwargs):
        if config._attn_implementation_internal is None:
            config._attn_implementation = "eager"
        super().__init__(config, *args, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, attn_implementation=None, **kwargs):
        """As `PreTrainedModel.from_pretrained`, with attention "eager" unless asked otherwise."""
        config = kwargs.get("config")
        default = getattr(config, "_attn_implementation_internal", None) or "eager"
        return super().from_pretrained(pretrained_model_name_or_path, *model_args,
                                       attn_implementation=attn_implementation or default, **kwargs)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The reference's init: normal(initializer_range) linear and conv weights, CLIP's scaled init in the
        encoder layers, zero group tokens and positions, logit_scale at logit_scale_init_value."""
        config = self.config
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            module.weight.normal_(0.0, config.initializer_range)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif isinstance(module, nn.BatchNorm1d):
            module.reset_parameters()
        elif isinstance(module, GroupViTVisionEmbeddings):
            module.position_embeddings.zero_()
        elif isinstance(module, GroupViTStage) and module.group_token is not None:
            module.group_token.zero_()
        elif isinstance(module, GroupViTModel):
            module.logit_scale.fill_(config.logit_scale_init_value)
        init_clip_weights(module, config.initializer_factor)

    def _outputs(self, output_attentions, output_hidden_states, return_dict):
        config = self.config
        return (config.output_attentions if output_attentions is None else output_attentions,
                config.output_hidden_states if output_hidden_states is None else output_hidden_states,
                config.use_return_dict if return_dict is None else return_dict)


class GroupViTTextModel(GroupViTPreTrainedModel):
    """GroupViT's text tower alone (CLIP's): last_hidden_state (B, T, C), pooler_output (B, C) at the
    end-of-text token.

    Example:
        >>> from polyformer import CLIPTokenizer, GroupViTTextModel
        >>> tokenizer = CLIPTokenizer.from_pretrained("nvidia/groupvit-gcc-yfcc")
        >>> model = GroupViTTextModel.from_pretrained("nvidia/groupvit-gcc-yfcc")
        >>> out = model(**tokenizer(["a photo of a cat", "a photo of a dog"], padding=True, return_tensors="pt"))
        >>> out.pooler_output.shape
        torch.Size([2, 256])
    """

    config_class = GroupViTTextConfig

    def __init__(self, config: GroupViTTextConfig):
        super().__init__(config)
        self.text_model = CLIPTextTransformer(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.text_model.embeddings.token_embedding

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.text_model.embeddings.token_embedding = value

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        """input_ids (B, T) CLIP token ids; attention_mask (B, T) 1 keep / 0 padding; position_ids (B, T)."""
        output_attentions, output_hidden_states, return_dict = self._outputs(output_attentions, output_hidden_states,
                                                                             return_dict)
        out = self.text_model(input_ids, attention_mask, position_ids, output_attentions, output_hidden_states)
        return finish(out, return_dict)


class GroupViTVisionModel(GroupViTPreTrainedModel):
    """GroupViT's vision tower alone: last_hidden_state (B, O, C) the final groups, pooler_output (B, C) their
    mean, hidden_states each stage's input and the last output, attentions the grouping stages' soft
    assignments (B, O_i, L_i).

    Example:
        >>> from polyformer import GroupViTVisionConfig, GroupViTVisionModel
        >>> model = GroupViTVisionModel(GroupViTVisionConfig(depths=[1, 1, 1])).eval()
        >>> model(torch.randn(1, 3, 224, 224)).last_hidden_state.shape
        torch.Size([1, 8, 384])
    """

    config_class = GroupViTVisionConfig
    main_input_name = "pixel_values"

    def __init__(self, config: GroupViTVisionConfig):
        super().__init__(config)
        self.vision_model = GroupViTVisionTransformer(config)
        self.post_init()

    def get_input_embeddings(self) -> GroupViTPatchEmbeddings:
        return self.vision_model.embeddings.patch_embeddings

    def forward(self, pixel_values=None, output_attentions=None, output_hidden_states=None, return_dict=None,
                interpolate_pos_encoding: bool = False):
        """pixel_values (B, num_channels, H, W), normalised; H x W must be image_size unless
        interpolate_pos_encoding=True (not in 4.37's signature: there such images fail)."""
        output_attentions, output_hidden_states, return_dict = self._outputs(output_attentions, output_hidden_states,
                                                                             return_dict)
        out = self.vision_model(pixel_values, output_attentions, output_hidden_states, interpolate_pos_encoding)
        return finish(out, return_dict)


class GroupViTModel(GroupViTPreTrainedModel):
    """Text and vision towers with projections into one space: image-text logits, CLIP's contrastive loss
    (return_loss) and text-driven segmentation (output_segmentation).

    Example (zero-shot classification):
        >>> from polyformer import CLIPProcessor, GroupViTModel
        >>> processor = CLIPProcessor.from_pretrained("nvidia/groupvit-gcc-yfcc")
        >>> model = GroupViTModel.from_pretrained("nvidia/groupvit-gcc-yfcc")
        >>> inputs = processor(text=["a photo of a cat", "a photo of a dog"], images=image, return_tensors="pt",
        ...                    padding=True)
        >>> probs = model(**inputs).logits_per_image.softmax(dim=1)  # (images, texts)
    """

    def __init__(self, config: GroupViTConfig):
        super().__init__(config)
        for name, cls in (("text_config", GroupViTTextConfig), ("vision_config", GroupViTVisionConfig)):
            tower = getattr(config, name)
            if not isinstance(tower, cls):
                raise ValueError(f"config.{name} is expected to be of type {cls.__name__} but is of type {type(tower)}.")
            tower._attn_implementation = config._attn_implementation
        text_width, vision_width = config.text_config.hidden_size, config.vision_config.hidden_size
        self.projection_dim, self.projection_intermediate_dim = config.projection_dim, config.projection_intermediate_dim
        self.text_model = CLIPTextTransformer(config.text_config)
        self.vision_model = GroupViTVisionTransformer(config.vision_config)
        self.visual_projection = projection_head(vision_width, config.projection_intermediate_dim, config.projection_dim)
        self.text_projection = projection_head(text_width, config.projection_intermediate_dim, config.projection_dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init_value)))
        self.post_init()

    def get_text_features(self, input_ids=None, attention_mask=None, position_ids=None, output_attentions=None,
                          output_hidden_states=None, return_dict=None) -> torch.Tensor:
        """(N, D) text features: the projection of the pooled text output, not normalised."""
        text = self.text_model(input_ids, attention_mask, position_ids, *self._outputs(output_attentions,
                                                                                       output_hidden_states, None)[:2])
        return self.text_projection(text.pooler_output)

    def get_image_features(self, pixel_values=None, output_attentions=None, output_hidden_states=None,
                           return_dict=None, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        """(B, D) image features: the projection of the pooled vision output, not normalised."""
        flags = self._outputs(output_attentions, output_hidden_states, None)[:2]
        return self.visual_projection(self.vision_model(pixel_values, *flags, interpolate_pos_encoding).pooler_output)

    def forward(self, input_ids=None, pixel_values=None, attention_mask=None, position_ids=None, return_loss=None,
                output_attentions=None, output_hidden_states=None, output_segmentation=None, return_dict=None,
                interpolate_pos_encoding: bool = False):
        """input_ids (N, T), attention_mask (N, T), position_ids (N, T): the texts; pixel_values (B, 3, H, W);
        return_loss: CLIP's loss (N == B, text i with image i); output_segmentation: segmentation_logits
        (B, N, H, W), which turns output_attentions on, as in the reference."""
        output_segmentation = self.config.output_segmentation if output_segmentation is None else output_segmentation
        output_attentions, output_hidden_states, return_dict = self._outputs(
            True if output_segmentation else output_attentions, output_hidden_states, return_dict)
        vision = self.vision_model(pixel_values, output_attentions, output_hidden_states, interpolate_pos_encoding)
        text = self.text_model(input_ids, attention_mask, position_ids, output_attentions, output_hidden_states)
        image_embeds = normalize(self.visual_projection(vision.pooler_output))  # (B, D)
        text_embeds = normalize(self.text_projection(text.pooler_output))  # (N, D)
        logit_scale = self.logit_scale.exp()
        logits_per_text = text_embeds @ image_embeds.t() * logit_scale  # (N, B)
        segmentation = None
        if output_segmentation:
            segmentation = self.segment(vision, text_embeds, logit_scale, pixel_values.shape[-2:])
        loss = contrastive_loss(logits_per_text) if return_loss else None
        out = GroupViTModelOutput(loss, logits_per_text.t(), logits_per_text, segmentation, text_embeds, image_embeds,
                                  text, vision)
        return finish(out, return_dict)

    def segment(self, vision: BaseModelOutputWithPooling, text_embeds: torch.Tensor, logit_scale: torch.Tensor,
                size: Tuple[int, int]) -> torch.Tensor:
        """(B, N, H, W): each final group's projection scored against every text, spread over the pixels by
        the chained soft assignments; logit_scale is applied twice, as in the reference."""
        groups = vision.last_hidden_state  # (B, O, C)
        batch = groups.shape[0]
        group_embeds = normalize(self.visual_projection(groups.reshape(-1, groups.shape[-1])))  # (B*O, D)
        grouping = grouping_from_attentions(vision.attentions, tuple(size))  # (B, O, H, W)
        logits = (group_embeds @ text_embeds.t() * logit_scale).reshape(batch, -1, text_embeds.shape[0])
        seg = logits.permute(0, 2, 1) @ grouping.reshape(batch, grouping.shape[1], -1) * logit_scale  # (B, N, H*W)
        return seg.reshape(batch, seg.shape[1], *grouping.shape[2:])
