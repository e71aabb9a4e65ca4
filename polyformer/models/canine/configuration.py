"""CANINE's configuration (framework-free)."""

from __future__ import annotations

from ...configuration import PretrainedConfig
from ...value_rules import NON_NEGATIVE_INT, NON_NEGATIVE_NUMBER, POSITIVE_INT, POSITIVE_NUMBER, PROBABILITY


class CanineConfig(PretrainedConfig):
    """Configuration of a CANINE model; the defaults give google/canine-s's shape.

    Args:
        hidden_size: width of every encoder and of the pooler (768).
        num_hidden_layers: layers of the deep encoder over molecules (12); the two character encoders
            have one layer each.
        num_attention_heads: heads of every attention layer (12).
        intermediate_size: feed-forward width (3072).
        hidden_act: "gelu" (default), "relu", "silu", "gelu_new", ... or a callable; in the encoders and in
            the down- and up-sampling convolutions.
        hidden_dropout_prob, attention_probs_dropout_prob: dropout on hidden states (0.1) and on attention
            probabilities (0.1).
        max_position_embeddings: longest character sequence the model takes (16384).
        type_vocab_size: number of token types (16).
        initializer_range: std of the normal init of new weights (0.02).
        layer_norm_eps: LayerNorm epsilon (1e-12).
        pad_token_id, bos_token_id, eos_token_id: 0, 0xE000 ([CLS]) and 0xE001 ([SEP]).
        downsampling_rate: characters per molecule, the kernel and stride of the downsampling convolution (4).
        upsampling_kernel_size: width of the convolution that maps characters + molecules back to
            characters (4).
        num_hash_functions: hash functions of the code-point embedding, each with its own table of width
            hidden_size / num_hash_functions (8; at most 16).
        num_hash_buckets: rows of each hash table, and of the character position table (16384).
        local_transformer_stride: window width and stride of the local attention in the first character
            encoder (128).

    Example:
        >>> from polyformer import CanineConfig, CanineModel
        >>> model = CanineModel(CanineConfig(num_hidden_layers=2))  # random weights
    """

    model_type = "canine"
    value_rules = {
        **{key: POSITIVE_INT for key in ("hidden_size", "num_attention_heads", "intermediate_size",
                                         "max_position_embeddings", "type_vocab_size", "downsampling_rate",
                                         "upsampling_kernel_size", "num_hash_functions", "num_hash_buckets",
                                         "local_transformer_stride")},
        "num_hidden_layers": NON_NEGATIVE_INT, "layer_norm_eps": POSITIVE_NUMBER,
        "initializer_range": NON_NEGATIVE_NUMBER,
        **{key: PROBABILITY for key in ("hidden_dropout_prob", "attention_probs_dropout_prob")},
    }
    size_keys = {"layers": "num_hidden_layers", "hidden": "hidden_size", "ffn": "intermediate_size",
                 "vocab": "num_hash_buckets", "positions": "max_position_embeddings"}

    def __init__(
        self,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        hidden_act: str = "gelu",
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.1,
        max_position_embeddings: int = 16384,
        type_vocab_size: int = 16,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        pad_token_id: int = 0,
        bos_token_id: int = 0xE000,
        eos_token_id: int = 0xE001,
        downsampling_rate: int = 4,
        upsampling_kernel_size: int = 4,
        num_hash_functions: int = 8,
        num_hash_buckets: int = 16384,
        local_transformer_stride: int = 128,
        **kwargs,
    ):
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)
        self.max_position_embeddings = max_position_embeddings
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.initializer_range = initializer_range
        self.type_vocab_size = type_vocab_size
        self.layer_norm_eps = layer_norm_eps
        self.downsampling_rate = downsampling_rate
        self.upsampling_kernel_size = upsampling_kernel_size
        self.num_hash_functions = num_hash_functions
        self.num_hash_buckets = num_hash_buckets
        self.local_transformer_stride = local_transformer_stride
