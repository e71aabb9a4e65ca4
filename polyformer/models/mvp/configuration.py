"""MVP's configuration (framework-free)."""

from __future__ import annotations

import warnings

from ...configuration import PretrainedConfig
from ...value_rules import BOOL, NON_NEGATIVE_INT, NON_NEGATIVE_NUMBER, POSITIVE_INT, PROBABILITY


class MvpConfig(PretrainedConfig):
    """Configuration of an MVP model (Tang et al., 2022): BART's encoder-decoder plus optional layer-wise
    prompts. The defaults give RUCAIBox/mvp's shape (BART-large).

    Args:
        vocab_size: number of token ids (50267).
        d_model: width (1024); also `hidden_size`.
        encoder_layers, decoder_layers: 12, 12 (`num_hidden_layers` is encoder_layers).
        encoder_attention_heads, decoder_attention_heads: 16, 16 (`num_attention_heads` is the encoder's).
        encoder_ffn_dim, decoder_ffn_dim: feed-forward widths (4096).
        activation_function: the feed-forward activation ("gelu").
        dropout (0.1), attention_dropout (0.0), activation_dropout (0.0), classifier_dropout (0.0).
        encoder_layerdrop, decoder_layerdrop: probability of skipping a whole layer in training (0.0).
        max_position_embeddings: longest sequence (1024); the learned table has 2 more rows (offset 2).
        init_std: standard deviation of the initial weights (0.02).
        scale_embedding: multiply token embeddings by sqrt(d_model) (False).
        use_cache: return past_key_values by default (True).
        pad_token_id (1), bos_token_id (0), eos_token_id (2), decoder_start_token_id (2: decoding starts
            from eos), forced_eos_token_id (2).
        use_prompt: add the layer-wise prompts (False); prompt_length (100) prefix keys and values per
            attention, made from an embedding by a prompt_mid_dim-wide (800) two-layer network.
        force_bos_token_to_be_generated: legacy; True sets forced_bos_token_id = bos_token_id (with a warning).

    Example:
        >>> from polyformer import MvpConfig, MvpForConditionalGeneration
        >>> config = MvpConfig(d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        ...                    decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, vocab_size=100)
        >>> model = MvpForConditionalGeneration(config)
    """

    model_type = "mvp"
    keys_to_ignore_at_inference = ["past_key_values"]
    # initializer_range: the name the shared init reads (not saved; transformers' MvpConfig lacks it)
    attribute_map = {"num_attention_heads": "encoder_attention_heads", "hidden_size": "d_model",
                     "initializer_range": "init_std"}
    value_rules = {
        **{key: POSITIVE_INT for key in ("vocab_size", "max_position_embeddings", "d_model", "encoder_ffn_dim",
                                         "encoder_attention_heads", "decoder_ffn_dim", "decoder_attention_heads",
                                         "prompt_length", "prompt_mid_dim")},
        "encoder_layers": NON_NEGATIVE_INT, "decoder_layers": NON_NEGATIVE_INT, "init_std": NON_NEGATIVE_NUMBER,
        **{key: PROBABILITY for key in ("dropout", "attention_dropout", "activation_dropout", "classifier_dropout",
                                        "encoder_layerdrop", "decoder_layerdrop")},
        **{key: BOOL for key in ("scale_embedding", "use_prompt", "use_cache")},
    }
    size_keys = {"layers": ("encoder_layers", "decoder_layers", "decoder_layers"), "hidden": "d_model",
                 "ffn": "encoder_ffn_dim", "vocab": "vocab_size", "positions": "max_position_embeddings"}

    def __init__(
        self,
        vocab_size: int = 50267,
        max_position_embeddings: int = 1024,
        encoder_layers: int = 12,
        encoder_ffn_dim: int = 4096,
        encoder_attention_heads: int = 16,
        decoder_layers: int = 12,
        decoder_ffn_dim: int = 4096,
        decoder_attention_heads: int = 16,
        encoder_layerdrop: float = 0.0,
        decoder_layerdrop: float = 0.0,
        activation_function: str = "gelu",
        d_model: int = 1024,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        activation_dropout: float = 0.0,
        init_std: float = 0.02,
        classifier_dropout: float = 0.0,
        scale_embedding: bool = False,
        use_cache: bool = True,
        pad_token_id: int = 1,
        bos_token_id: int = 0,
        eos_token_id: int = 2,
        is_encoder_decoder: bool = True,
        decoder_start_token_id: int = 2,
        forced_eos_token_id: int = 2,
        use_prompt: bool = False,
        prompt_length: int = 100,
        prompt_mid_dim: int = 800,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.d_model = d_model
        self.encoder_ffn_dim = encoder_ffn_dim
        self.encoder_layers = encoder_layers
        self.encoder_attention_heads = encoder_attention_heads
        self.decoder_ffn_dim = decoder_ffn_dim
        self.decoder_layers = decoder_layers
        self.decoder_attention_heads = decoder_attention_heads
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation_dropout = activation_dropout
        self.activation_function = activation_function
        self.init_std = init_std
        self.encoder_layerdrop = encoder_layerdrop
        self.decoder_layerdrop = decoder_layerdrop
        self.classifier_dropout = classifier_dropout
        self.use_cache = use_cache
        self.num_hidden_layers = encoder_layers
        self.scale_embedding = scale_embedding
        self.use_prompt = use_prompt
        self.prompt_length = prompt_length
        self.prompt_mid_dim = prompt_mid_dim
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                         is_encoder_decoder=is_encoder_decoder, decoder_start_token_id=decoder_start_token_id,
                         forced_eos_token_id=forced_eos_token_id, **kwargs)
        if self.forced_bos_token_id is None and kwargs.get("force_bos_token_to_be_generated", False):
            self.forced_bos_token_id = self.bos_token_id
            warnings.warn(f"Please make sure the config includes `forced_bos_token_id={self.bos_token_id}` in future "
                          "versions. The config can simply be saved and uploaded again to be fixed.")
