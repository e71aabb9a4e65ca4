"""GroupViT's configurations (framework-free): a CLIP text tower, a grouping vision tower, and the pair."""

from __future__ import annotations

import logging
import os
from typing import Any, Optional, Union

from ...configuration import PretrainedConfig, config_source, pop_hub_kwargs
from ...value_rules import NON_NEGATIVE_INT, POSITIVE_INT, POSITIVE_NUMBER, PROBABILITY

logger = logging.getLogger(__name__)


class _TowerConfig(PretrainedConfig):
    """A tower's config; `from_pretrained` of a full GroupViT config.json takes the tower's part, as 4.37 does."""

    key_in_parent = ""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, os.PathLike], **kwargs: Any) -> PretrainedConfig:
        config_dict = cls.get_config_dict(pretrained_model_name_or_path, **pop_hub_kwargs(kwargs))
        if config_dict.get("model_type") == GroupViTConfig.model_type:
            config_dict = config_dict[cls.key_in_parent]
        if config_dict.get("model_type", cls.model_type) != cls.model_type:
            logger.warning("a config of model_type %r loaded as %s (%r): not every field may apply",
                           config_dict["model_type"], cls.__name__, cls.model_type)
        config_dict.setdefault("_name_or_path", os.fspath(pretrained_model_name_or_path))
        return cls.from_dict(config_dict, _source=config_source(pretrained_model_name_or_path), **kwargs)


class GroupViTTextConfig(_TowerConfig):
    """The text tower: CLIP's causal text transformer; the defaults give nvidia/groupvit-gcc-yfcc's.

    Args:
        vocab_size: rows of the token embedding (49408, CLIP's BPE vocabulary).
        hidden_size: width (256). intermediate_size: feed-forward width (1024).
        num_hidden_layers: layers (12). num_attention_heads: heads (4).
        max_position_embeddings: the longest text (77 tokens).
        hidden_act: feed-forward activation ("quick_gelu").
        layer_norm_eps: LayerNorm epsilon (1e-5).
        dropout: unused by the PyTorch model, kept for config.json (0.0). attention_dropout: on attention
            probabilities (0.0).
        initializer_range, initializer_factor: init scales of new weights (0.02, 1.0).
        pad_token_id, bos_token_id, eos_token_id: 1, 49406, 49407. The pooled output is the state at the
            first eos_token_id; configs saved before transformers 4.31 say eos_token_id=2, and then the
            highest id of each row is taken instead (CLIP's end-of-text token is the last in the vocabulary).
    """

    model_type = "groupvit_text_model"
    key_in_parent = "text_config"
    value_rules = {
        **{key: POSITIVE_INT for key in ("vocab_size", "hidden_size", "intermediate_size", "num_attention_heads",
                                         "max_position_embeddings")},
        "num_hidden_layers": NON_NEGATIVE_INT, "layer_norm_eps": POSITIVE_NUMBER,
        **{key: PROBABILITY for key in ("dropout", "attention_dropout")},
    }
    size_keys = {"layers": "num_hidden_layers", "hidden": "hidden_size", "ffn": "intermediate_size",
                 "vocab": "vocab_size", "positions": "max_position_embeddings"}

    def __init__(self, vocab_size: int = 49408, hidden_size: int = 256, intermediate_size: int = 1024,
                 num_hidden_layers: int = 12, num_attention_heads: int = 4, max_position_embeddings: int = 77,
                 hidden_act: str = "quick_gelu", layer_norm_eps: float = 1e-5, dropout: float = 0.0,
                 attention_dropout: float = 0.0, initializer_range: float = 0.02, initializer_factor: float = 1.0,
                 pad_token_id: int = 1, bos_token_id: int = 49406, eos_token_id: int = 49407, **kwargs: Any):
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.dropout = dropout
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.max_position_embeddings = max_position_embeddings
        self.layer_norm_eps = layer_norm_eps
        self.hidden_act = hidden_act
        self.initializer_range = initializer_range
        self.initializer_factor = initializer_factor
        self.attention_dropout = attention_dropout


class GroupViTVisionConfig(_TowerConfig):
    """The vision tower: patches, then stages of CLIP encoder layers, each but the last ending in a grouping
    block that merges the image tokens into its group tokens. Defaults give nvidia/groupvit-gcc-yfcc's.

    Args:
        hidden_size: width (384). intermediate_size: feed-forward width (1536).
        depths: encoder layers per stage ([6, 3, 3]). num_hidden_layers: should be sum(depths) (12).
        num_group_tokens: group tokens learnt by each stage ([64, 8, 0]; 0: no grouping at that stage).
        num_output_groups: groups each stage's grouping block outputs ([64, 8, 8]).
        num_attention_heads: heads (6).
        image_size, patch_size, num_channels: input images (224 pixels square, 16-pixel patches, 3 channels).
        hidden_act: activation of every MLP ("gelu"). layer_norm_eps: 1e-5.
        dropout: after the patch embeddings (0.0). attention_dropout: on attention probabilities (0.0).
        initializer_range, initializer_factor: init scales of new weights (0.02, 1.0).
        assign_eps: added to each group's total assignment before normalising it (1.0).
        assign_mlp_ratio: widths of the grouping block's token-mixing and channel MLPs, as multiples of
            hidden_size ([0.5, 4]; a single number serves both).
    """

    model_type = "groupvit_vision_model"
    key_in_parent = "vision_config"
    value_rules = {
        **{key: POSITIVE_INT for key in ("hidden_size", "intermediate_size", "num_attention_heads", "image_size",
                                         "patch_size", "num_channels")},
        "num_hidden_layers": NON_NEGATIVE_INT, "layer_norm_eps": POSITIVE_NUMBER,
        **{key: PROBABILITY for key in ("dropout", "attention_dropout")},
    }
    size_keys = {"layers": "num_hidden_layers", "hidden": "hidden_size", "ffn": "intermediate_size"}

    def __init__(self, hidden_size: int = 384, intermediate_size: int = 1536, depths=(6, 3, 3),
                 num_hidden_layers: int = 12, num_group_tokens=(64, 8, 0), num_output_groups=(64, 8, 8),
                 num_attention_heads: int = 6, image_size: int = 224, patch_size: int = 16, num_channels: int = 3,
                 hidden_act: str = "gelu", layer_norm_eps: float = 1e-5, dropout: float = 0.0,
                 attention_dropout: float = 0.0, initializer_range: float = 0.02, initializer_factor: float = 1.0,
                 assign_eps: float = 1.0, assign_mlp_ratio=(0.5, 4), **kwargs: Any):
        super().__init__(**kwargs)
        depths, num_group_tokens, num_output_groups = list(depths), list(num_group_tokens), list(num_output_groups)
        if num_hidden_layers != sum(depths):
            logger.warning("num_hidden_layers=%s, but sum(depths) = %s layers are built", num_hidden_layers,
                           sum(depths))
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.depths = depths
        self.num_hidden_layers = num_hidden_layers
        self.num_group_tokens = num_group_tokens
        self.num_output_groups = num_output_groups
        self.num_attention_heads = num_attention_heads
        self.image_size = image_size
        self.patch_size = patch_size
        self.num_channels = num_channels
        self.hidden_act = hidden_act
        self.layer_norm_eps = layer_norm_eps
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.initializer_factor = initializer_factor
        self.assign_eps = assign_eps
        self.assign_mlp_ratio = list(assign_mlp_ratio) if isinstance(assign_mlp_ratio, (list, tuple)) else assign_mlp_ratio


class GroupViTConfig(PretrainedConfig):
    """GroupViT: a text config, a vision config and the projections joining them.

    Args:
        text_config: a dict of GroupViTTextConfig arguments (or the config itself); None gives the defaults.
        vision_config: the same for GroupViTVisionConfig.
        projection_dim: width of the shared text-image space (256).
        projection_intermediate_dim: hidden width of the two projection MLPs (4096).
        logit_scale_init_value: initial log of the similarity temperature (2.6592, i.e. exp = 14.29).
        text_config_dict, vision_config_dict: legacy names of the two sub-configs; they win over
            text_config / vision_config where both set a key.

    Example:
        >>> from polyformer import GroupViTConfig, GroupViTModel
        >>> config = GroupViTConfig(text_config={"num_hidden_layers": 2}, vision_config={"depths": [1, 1, 1]})
        >>> model = GroupViTModel(config)  # random weights
    """

    model_type = "groupvit"
    value_rules = {"projection_dim": POSITIVE_INT, "projection_intermediate_dim": POSITIVE_INT}

    def __init__(self, text_config: Optional[Union[dict, GroupViTTextConfig]] = None,
                 vision_config: Optional[Union[dict, GroupViTVisionConfig]] = None, projection_dim: int = 256,
                 projection_intermediate_dim: int = 4096, logit_scale_init_value: float = 2.6592, **kwargs: Any):
        legacy = {"text_config": kwargs.pop("text_config_dict", None),
                  "vision_config": kwargs.pop("vision_config_dict", None)}
        super().__init__(**kwargs)
        towers = {}
        for key, cls, given in (("text_config", GroupViTTextConfig, text_config),
                                ("vision_config", GroupViTVisionConfig, vision_config)):
            values = given.to_dict() if isinstance(given, PretrainedConfig) else dict(given or {})
            if legacy[key] is not None:
                values.update(cls(**legacy[key]).to_dict())
            towers[key] = cls(**values)
        self.text_config = towers["text_config"]
        self.vision_config = towers["vision_config"]
        self.projection_dim = projection_dim
        self.projection_intermediate_dim = projection_intermediate_dim
        self.logit_scale_init_value = logit_scale_init_value
        self.initializer_range = 0.02
        self.initializer_factor = 1.0
        self.output_segmentation = False  # as 4.37: config.json's value is ignored; pass it to forward()

    @classmethod
    def from_text_vision_configs(cls, text_config: GroupViTTextConfig, vision_config: GroupViTVisionConfig,
                                 **kwargs: Any) -> "GroupViTConfig":
        return cls(text_config=text_config.to_dict(), vision_config=vision_config.to_dict(), **kwargs)
