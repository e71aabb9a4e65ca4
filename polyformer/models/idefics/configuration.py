"""IDEFICS's configuration (framework-free): the text decoder's settings, with a vision sub-config (the
CLIP-style image encoder) and a perceiver sub-config (the optional resampler), both saved nested in
config.json as transformers 4.37 writes them (only what differs from their defaults, plus model_type)."""

from __future__ import annotations

from typing import Any

from ...configuration import PretrainedConfig
from ...value_rules import BOOL, NON_NEGATIVE_INT, NON_NEGATIVE_NUMBER, POSITIVE_INT, POSITIVE_NUMBER, PROBABILITY


class IdeficsVisionConfig(PretrainedConfig):
    """The image encoder: a ViT of `num_hidden_layers` pre-norm layers over (image_size / patch_size)^2
    patches plus a CLS token (224 / 14: 257 tokens of width 768 by default).

    Args:
        embed_dim (768, alias hidden_size), image_size (224), intermediate_size (5120), patch_size (14),
        num_hidden_layers (32), num_attention_heads (16), num_channels (3), hidden_act ("gelu"),
        layer_norm_eps (1e-5), attention_dropout (0.0), initializer_range (0.02), initializer_factor (1.0).
    """

    model_type = "idefics"
    attribute_map = {"hidden_size": "embed_dim"}
    value_rules = {
        **{key: POSITIVE_INT for key in ("embed_dim", "image_size", "intermediate_size", "patch_size",
                                         "num_attention_heads", "num_channels")},
        "num_hidden_layers": NON_NEGATIVE_INT, "layer_norm_eps": POSITIVE_NUMBER, "attention_dropout": PROBABILITY,
    }
    size_keys = {"layers": "num_hidden_layers", "hidden": "embed_dim", "ffn": "intermediate_size"}

    def __init__(self, embed_dim: int = 768, image_size: int = 224, intermediate_size: int = 5120,
                 patch_size: int = 14, num_hidden_layers: int = 32, num_attention_heads: int = 16,
                 num_channels: int = 3, hidden_act: str = "gelu", layer_norm_eps: float = 1e-5,
                 attention_dropout: float = 0.0, initializer_range: float = 0.02, initializer_factor: float = 1.0,
                 **kwargs: Any):
        self.embed_dim = embed_dim
        self.image_size = image_size
        self.intermediate_size = intermediate_size
        self.patch_size = patch_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_channels = num_channels
        self.layer_norm_eps = layer_norm_eps
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.initializer_factor = initializer_factor
        self.hidden_act = hidden_act
        super().__init__(**kwargs)


class IdeficsPerceiverConfig(PretrainedConfig):
    """The perceiver resampler, which compresses each image's encoder states to `resampler_n_latents`
    tokens. Whether it runs is decided by the top-level `IdeficsConfig.use_resampler`, not by this
    config's own `use_resampler` (kept for config.json compatibility).

    Args:
        use_resampler (False), resampler_n_latents (64), resampler_depth (6 blocks),
        resampler_n_heads (16), resampler_head_dim (96), qk_layer_norms_perceiver (False: LayerNorm on
        queries and keys per head when True).
    """

    model_type = "idefics"
    value_rules = {**{key: POSITIVE_INT for key in ("resampler_n_latents", "resampler_n_heads", "resampler_head_dim")},
                   "resampler_depth": NON_NEGATIVE_INT, "use_resampler": BOOL, "qk_layer_norms_perceiver": BOOL}

    def __init__(self, use_resampler: bool = False, resampler_n_latents: int = 64, resampler_depth: int = 6,
                 resampler_n_heads: int = 16, resampler_head_dim: int = 96, qk_layer_norms_perceiver: bool = False,
                 **kwargs: Any):
        self.use_resampler = use_resampler
        self.resampler_n_latents = resampler_n_latents
        self.resampler_depth = resampler_depth
        self.resampler_n_heads = resampler_n_heads
        self.resampler_head_dim = resampler_head_dim
        self.qk_layer_norms_perceiver = qk_layer_norms_perceiver
        super().__init__(**kwargs)


class IdeficsConfig(PretrainedConfig):
    """Configuration of an IDEFICS model; the defaults give IDEFICS-9B's shape (HuggingFaceM4/idefics-9b).

    Args:
        vocab_size (32000); additional_vocab_size (0): extra token rows (e.g. "<image>",
            "<fake_token_around_image>") kept apart from the regular ones so that they stay trainable when
            the regular rows are frozen.
        hidden_size (4096), intermediate_size (11008), num_hidden_layers (32), num_attention_heads (32):
            the Llama-style text decoder.
        dropout (0.0): on the residual branches and attention probabilities (training only).
        hidden_act ("silu"), initializer_range (0.02), rms_norm_eps (1e-6), use_cache (True).
        alpha_initializer ("zeros" | "ones" | "normal" / "gaussian" / "random"), alphas_initializer_range
            (0.0, the std of "normal"), alpha_type ("float": one gate value; "vector": one per channel): the
            tanh gates of the gated cross-attention layers.
        pad_token_id (0), bos_token_id (1), eos_token_id (2), tie_word_embeddings (False).
        cross_layer_interval (1): a gated cross-attention layer before every that many decoder layers.
        qk_layer_norms (False): RMSNorm on the cross-attention queries and keys per head.
        freeze_text_layers (True), freeze_text_module_exceptions ([]), freeze_lm_head (False),
        freeze_vision_layers (True), freeze_vision_module_exceptions ([]): parameters frozen at
            construction; exceptions are module kinds ("LayerNorm", "Linear", "Embedding") left trainable.
        use_resampler (False): compress each image with the perceiver resampler.
        vision_config, perceiver_config: an `IdeficsVisionConfig` / `IdeficsPerceiverConfig`, a dict of
            their arguments, or None for the defaults.

    Example:
        >>> from polyformer import IdeficsConfig, IdeficsModel
        >>> configuration = IdeficsConfig()  # idefics-9b style
        >>> model = IdeficsModel(configuration)  # random weights  # doctest: +SKIP
        >>> configuration = model.config  # doctest: +SKIP
    """

    model_type = "idefics"
    is_composition = False
    value_rules = {
        **{key: POSITIVE_INT for key in ("vocab_size", "hidden_size", "intermediate_size", "num_attention_heads",
                                         "cross_layer_interval")},
        "additional_vocab_size": NON_NEGATIVE_INT, "num_hidden_layers": NON_NEGATIVE_INT,
        "rms_norm_eps": POSITIVE_NUMBER, "initializer_range": NON_NEGATIVE_NUMBER, "dropout": PROBABILITY,
        **{key: BOOL for key in ("use_cache", "qk_layer_norms", "freeze_text_layers", "freeze_lm_head",
                                 "freeze_vision_layers", "use_resampler")},
    }
    size_keys = {"layers": "num_hidden_layers", "hidden": "hidden_size", "ffn": "intermediate_size",
                 "vocab": "vocab_size"}

    def __init__(self, vocab_size: int = 32000, additional_vocab_size: int = 0, hidden_size: int = 4096,
                 intermediate_size: int = 11008, num_hidden_layers: int = 32, num_attention_heads: int = 32,
                 dropout: float = 0.0, hidden_act: str = "silu", initializer_range: float = 0.02,
                 alpha_initializer: str = "zeros", alphas_initializer_range: float = 0.0, alpha_type: str = "float",
                 rms_norm_eps: float = 1e-6, use_cache: bool = True, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                 tie_word_embeddings: bool = False, cross_layer_interval: int = 1, qk_layer_norms: bool = False,
                 freeze_text_layers: bool = True, freeze_text_module_exceptions=(), freeze_lm_head: bool = False,
                 freeze_vision_layers: bool = True, freeze_vision_module_exceptions=(), use_resampler: bool = False,
                 vision_config=None, perceiver_config=None, **kwargs: Any):
        # No checks on the values here: from_dict builds the config first and applies overrides after.
        self.vocab_size = vocab_size
        self.additional_vocab_size = additional_vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.dropout = dropout
        self.hidden_act = hidden_act
        self.initializer_range = initializer_range
        self.alpha_initializer = alpha_initializer
        self.alphas_initializer_range = alphas_initializer_range
        self.alpha_type = alpha_type
        self.rms_norm_eps = rms_norm_eps
        self.use_cache = use_cache
        self.cross_layer_interval = cross_layer_interval
        self.qk_layer_norms = qk_layer_norms
        self.freeze_vision_layers = freeze_vision_layers
        self.freeze_text_layers = freeze_text_layers
        self.freeze_text_module_exceptions = list(freeze_text_module_exceptions or [])
        self.freeze_vision_module_exceptions = list(freeze_vision_module_exceptions or [])
        self.freeze_lm_head = freeze_lm_head
        self.use_resampler = use_resampler
        self.perceiver_config = _sub_config(IdeficsPerceiverConfig, perceiver_config, "perceiver_config")
        self.vision_config = _sub_config(IdeficsVisionConfig, vision_config, "vision_config")
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                         tie_word_embeddings=tie_word_embeddings, **kwargs)


def _sub_config(config_class: type, value, name: str) -> PretrainedConfig:
    if value is None:
        return config_class()
    if isinstance(value, dict):
        return config_class(**value)
    if isinstance(value, config_class):
        return value
    raise TypeError(f"{name} must be a {config_class.__name__}, a dict of its arguments or None, "
                    f"got {type(value).__name__}")
