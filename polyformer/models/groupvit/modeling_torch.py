"""GroupViT in PyTorch (Xu et al., 2022): image tokens grouped into segments, learnt from text alone.

Notation: B images, N texts, T text length, C width, O final groups, D projection_dim.

    vision tower (vision_model.*): patches grouped stage by stage into O groups (vision_torch.py)
    text tower (text_model.*): CLIP's causal transformer (pt/clip_layers.py)
    GroupViTModel: each tower's pooled output --Linear, BatchNorm, ReLU, Linear--> (., D), L2-normalised;
      logits_per_text (N, B) = exp(logit_scale) * text @ image^T
      segmentation: the O final groups projected the same way and scored against every text, spread over the
      pixels through the product of the stages' soft assignments -> (B, N, H, W)

Module attributes are the reference's checkpoint keys (vision_model.encoder.stages.0.downsample.assign.q_proj, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Tuple

import torch
import torch.nn as nn

from ...outputs import BaseModelOutputWithPooling, ModelOutput, finish
from ...pt.clip_layers import CLIPTextTransformer, contrastive_loss, init_clip_weights
from ...pt.modeling import PreTrainedModel
from .configuration import GroupViTConfig, GroupViTTextConfig, GroupViTVisionConfig
from .vision_torch import (GroupViTPatchEmbeddings, GroupViTStage, GroupViTVisionEmbeddings, GroupViTVisionTransformer,
                     grouping_from_attentions)


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


def projection_head(width: int, inner: int, out: int) -> nn.Sequential:
    """Linear -> BatchNorm -> ReLU -> Linear (checkpoint names .0, .1, .3)."""
    return nn.Sequential(nn.Linear(width, inner), nn.BatchNorm1d(inner), nn.ReLU(inplace=True), nn.Linear(inner, out))


def normalize(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


# --- models -------------------------------------------------------------------------------------------
class GroupViTPreTrainedModel(PreTrainedModel):
    config_class = GroupViTConfig
    base_model_prefix = "groupvit"
    # device_map (4.37 has none for GroupViT): encoder layers, embeddings and grouping stages whole
    _no_split_modules = ["CLIPEncoderLayer", "CLIPTextEmbeddings", "GroupViTVisionEmbeddings", "GroupViTStage"]

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
        options = self.config.output_options(output_attentions, output_hidden_states, return_dict)
        out = self.text_model(input_ids, attention_mask, position_ids, output_attentions=options.output_attentions,
                              output_hidden_states=options.output_hidden_states)
        return finish(out, options.return_dict)


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
        options = self.config.output_options(output_attentions, output_hidden_states, return_dict)
        out = self.vision_model(pixel_values, output_attentions=options.output_attentions,
                                output_hidden_states=options.output_hidden_states,
                                interpolate_pos_encoding=interpolate_pos_encoding)
        return finish(out, options.return_dict)


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
        options = self.config.output_options(output_attentions, output_hidden_states)
        text = self.text_model(input_ids, attention_mask, position_ids, output_attentions=options.output_attentions,
                               output_hidden_states=options.output_hidden_states)
        return self.text_projection(text.pooler_output)

    def get_image_features(self, pixel_values=None, output_attentions=None, output_hidden_states=None,
                           return_dict=None, interpolate_pos_encoding: bool = False) -> torch.Tensor:
        """(B, D) image features: the projection of the pooled vision output, not normalised."""
        options = self.config.output_options(output_attentions, output_hidden_states)
        vision = self.vision_model(pixel_values, output_attentions=options.output_attentions,
                                   output_hidden_states=options.output_hidden_states,
                                   interpolate_pos_encoding=interpolate_pos_encoding)
        return self.visual_projection(vision.pooler_output)

    def forward(self, input_ids=None, pixel_values=None, attention_mask=None, position_ids=None, return_loss=None,
                output_attentions=None, output_hidden_states=None, output_segmentation=None, return_dict=None,
                interpolate_pos_encoding: bool = False):
        """input_ids (N, T), attention_mask (N, T), position_ids (N, T): the texts; pixel_values (B, 3, H, W);
        return_loss: CLIP's loss (N == B, text i with image i); output_segmentation: segmentation_logits
        (B, N, H, W), which turns output_attentions on, as in the reference."""
        output_segmentation = self.config.output_segmentation if output_segmentation is None else output_segmentation
        output_attentions, output_hidden_states, return_dict = self.config.output_options(
            True if output_segmentation else output_attentions, output_hidden_states, return_dict)
        vision = self.vision_model(pixel_values, output_attentions=output_attentions,
                                   output_hidden_states=output_hidden_states,
                                   interpolate_pos_encoding=interpolate_pos_encoding)
        text = self.text_model(input_ids, attention_mask, position_ids, output_attentions=output_attentions,
                               output_hidden_states=output_hidden_states)
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
