"""GPT-J's configuration (framework-free)."""

from __future__ import annotations

from ...configuration import PretrainedConfig
from ...value_rules import BOOL, NON_NEGATIVE_INT, NON_NEGATIVE_NUMBER, POSITIVE_INT, POSITIVE_NUMBER, PROBABILITY


class GPTJConfig(PretrainedConfig):
    """Configuration of a GPT-J model; the defaults give EleutherAI/gpt-j-6B's shape.

    Args:
        vocab_size: number of token ids (50400).
        n_positions: longest sequence, cache included (2048); alias `max_position_embeddings`.
        n_embd, n_layer, n_head: width (4096), layers (28), attention heads (16); aliases `hidden_size`,
            `num_hidden_layers`, `num_attention_heads`.
        rotary_dim: how many dims of each head get rotary position embedding (64; None: all).
        n_inner: feed-forward width (None: 4 * n_embd).
        activation_function: "gelu_new" (default), "gelu", "relu", "silu", "tanh".
        resid_pdrop, embd_pdrop, attn_pdrop: dropout on the residual branches, the embeddings and the
            attention probabilities (all 0.0).
        layer_norm_epsilon: LayerNorm epsilon (1e-5).
        initializer_range: std of the normal init of new weights (0.02).
        use_cache: return past_key_values by default (True).
        bos_token_id, eos_token_id: 50256; tie_word_embeddings: False.

    Example:
        >>> from polyformer import GPTJConfig, GPTJModel
        >>> model = GPTJModel(GPTJConfig(n_layer=2, n_embd=64, n_head=4, rotary_dim=8))  # random weights
    """

    model_type = "gptj"
    attribute_map = {
        "max_position_embeddings": "n_positions",
        "hidden_size": "n_embd",
        "num_attention_heads": "n_head",
        "num_hidden_layers": "n_layer",
    }
    value_rules = {
        **{key: POSITIVE_INT for key in ("vocab_size", "n_positions", "n_embd", "n_head")},
        "n_layer": NON_NEGATIVE_INT, "n_inner": POSITIVE_INT.or_none(), "rotary_dim": POSITIVE_INT.or_none(),
        **{key: PROBABILITY for key in ("resid_pdrop", "embd_pdrop", "attn_pdrop")},
        "layer_norm_epsilon": POSITIVE_NUMBER, "initializer_range": NON_NEGATIVE_NUMBER, "use_cache": BOOL,
    }
    size_keys = {"layers": "n_layer", "hidden": "n_embd", "ffn": "n_inner", "vocab": "vocab_size"}

    def __init__(
        self,
        vocab_size: int = 50400,
        n_positions: int = 2048,
        n_embd: int = 4096,
        n_layer: int = 28,
        n_head: int = 16,
        rotary_dim: int = 64,
        n_inner=None,
        activation_function: str = "gelu_new",
        resid_pdrop: float = 0.0,
        embd_pdrop: float = 0.0,
        attn_pdrop: float = 0.0,
        layer_norm_epsilon: float = 1e-5,
        initializer_range: float = 0.02,
        use_cache: bool = True,
        bos_token_id: int = 50256,
        eos_token_id: int = 50256,
        tie_word_embeddings: bool = False,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.n_positions = n_positions
        self.n_embd = n_embd
        self.n_layer = n_layer
        self.n_head = n_head
        self.n_inner = n_inner
        self.rotary_dim = rotary_dim
        self.activation_function = activation_function
        self.resid_pdrop = resid_pdrop
        self.embd_pdrop = embd_pdrop
        self.attn_pdrop = attn_pdrop
        self.layer_norm_epsilon = layer_norm_epsilon
        self.initializer_range = initializer_range
        self.use_cache = use_cache
        super().__init__(bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                         tie_word_embeddings=tie_word_embeddings, **kwargs)
