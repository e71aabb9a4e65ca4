"""Llama's configuration (framework-free)."""

from __future__ import annotations

from ...configuration import PretrainedConfig
from ...value_rules import BOOL, NON_NEGATIVE_INT, NON_NEGATIVE_NUMBER, POSITIVE_INT, POSITIVE_NUMBER, PROBABILITY


class LlamaConfig(PretrainedConfig):
    """Configuration of a Llama / Code Llama model; the defaults give Llama-7B's shape.

    Args:
        vocab_size: number of token ids (32000).
        hidden_size, intermediate_size: width (4096) and SwiGLU width (11008).
        num_hidden_layers, num_attention_heads: 32, 32.
        num_key_value_heads: key/value heads for grouped-query attention (None: num_attention_heads,
            plain multi-head; 1: multi-query).
        hidden_act: the gate's activation ("silu").
        max_position_embeddings: the context the model was trained for (2048); no hard limit, but
            "dynamic" rope_scaling starts beyond it.
        initializer_range (0.02), rms_norm_eps (1e-6), use_cache (True).
        pad_token_id (None), bos_token_id (1), eos_token_id (2), tie_word_embeddings (False).
        pretraining_tp: tensor-parallel rank used in pretraining (1). Values > 1 change only the order of
            float additions in 4.37; polyformer computes as with 1.
        rope_theta: the rotary base (10000.0; Code Llama: 1e6).
        rope_scaling: None or {"type": "linear" | "dynamic", "factor": float > 1}.
        attention_bias: biases on q/k/v/o projections (False). attention_dropout (0.0).

    Example:
        >>> from polyformer import LlamaConfig, LlamaForCausalLM
        >>> model = LlamaForCausalLM(LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        ...                                      num_attention_heads=4, num_key_value_heads=2, vocab_size=100))
    """

    model_type = "llama"
    value_rules = {
        **{key: POSITIVE_INT for key in ("vocab_size", "hidden_size", "intermediate_size", "num_attention_heads",
                                         "num_key_value_heads", "max_position_embeddings", "pretraining_tp")},
        "num_hidden_layers": NON_NEGATIVE_INT, "rms_norm_eps": POSITIVE_NUMBER, "rope_theta": POSITIVE_NUMBER,
        "initializer_range": NON_NEGATIVE_NUMBER, "use_cache": BOOL, "attention_bias": BOOL,
        "attention_dropout": PROBABILITY,
    }
    size_keys = {"layers": "num_hidden_layers", "hidden": "hidden_size", "ffn": "intermediate_size",
                 "vocab": "vocab_size"}

    def __init__(
        self,
        vocab_size: int = 32000,
        hidden_size: int = 4096,
        intermediate_size: int = 11008,
        num_hidden_layers: int = 32,
        num_attention_heads: int = 32,
        num_key_value_heads=None,
        hidden_act: str = "silu",
        max_position_embeddings: int = 2048,
        initializer_range: float = 0.02,
        rms_norm_eps: float = 1e-6,
        use_cache: bool = True,
        pad_token_id=None,
        bos_token_id: int = 1,
        eos_token_id: int = 2,
        pretraining_tp: int = 1,
        tie_word_embeddings: bool = False,
        rope_theta: float = 10000.0,
        rope_scaling=None,
        attention_bias: bool = False,
        attention_dropout: float = 0.0,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_attention_heads if num_key_value_heads is None else num_key_value_heads
        self.hidden_act = hidden_act
        self.initializer_range = initializer_range
        self.rms_norm_eps = rms_norm_eps
        self.pretraining_tp = pretraining_tp
        self.use_cache = use_cache
        self.rope_theta = rope_theta
        self.rope_scaling = rope_scaling
        _check_rope_scaling(rope_scaling)
        self.attention_bias = attention_bias
        self.attention_dropout = attention_dropout
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                         tie_word_embeddings=tie_word_embeddings, **kwargs)


def _check_rope_scaling(rope_scaling) -> None:
    """4.37's rule: None, or exactly {"type": "linear" | "dynamic", "factor": float > 1}."""
    if rope_scaling is None:
        return
    if not isinstance(rope_scaling, dict) or len(rope_scaling) != 2:
        raise ValueError(f"`rope_scaling` must be a dictionary with two fields, `type` and `factor`, got {rope_scaling}")
    kind, factor = rope_scaling.get("type", rope_scaling.get("rope_type")), rope_scaling.get("factor")
    if kind not in ("linear", "dynamic"):
        raise ValueError(f"`rope_scaling`'s type field must be one of ['linear', 'dynamic'], got {kind}")
    if not isinstance(factor, float) or factor <= 1.0:
        raise ValueError(f"`rope_scaling`'s factor field must be a float > 1, got {factor}")
