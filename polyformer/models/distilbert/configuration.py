"""DistilBERT's configuration (framework-free)."""

from __future__ import annotations

from ...configuration import PretrainedConfig
from ...value_rules import BOOL, NON_NEGATIVE_INT, NON_NEGATIVE_NUMBER, POSITIVE_INT, PROBABILITY


class DistilBertConfig(PretrainedConfig):
    """Configuration of a DistilBERT model; the defaults give distilbert-base-uncased's shape.

    Args:
        vocab_size: number of token ids (30522).
        max_position_embeddings: longest sequence the model takes (512).
        sinusoidal_pos_embds: fixed sin/cos position embeddings instead of learned ones (False).
        n_layers, n_heads, dim, hidden_dim: depth (6), attention heads (12), width (768), feed-forward
            width (3072). `num_hidden_layers`, `num_attention_heads` and `hidden_size` are aliases.
        dropout, attention_dropout: dropout on hidden states (0.1) and on attention probabilities (0.1).
        activation: "gelu" (default), "relu", "silu", "gelu_new" or a callable.
        initializer_range: std of the normal init of new weights (0.02).
        qa_dropout, seq_classif_dropout: dropout in the QA head (0.1) and in the sequence-classification
            and multiple-choice heads (0.2).
        pad_token_id: padding id, whose embedding row is zero-initialised (0).

    Example:
        >>> from polyformer import DistilBertConfig, DistilBertModel
        >>> model = DistilBertModel(DistilBertConfig(n_layers=2))  # random weights
    """

    model_type = "distilbert"
    attribute_map = {"hidden_size": "dim", "num_attention_heads": "n_heads", "num_hidden_layers": "n_layers"}
    value_rules = {
        **{key: POSITIVE_INT for key in ("vocab_size", "max_position_embeddings", "n_heads", "dim", "hidden_dim")},
        "n_layers": NON_NEGATIVE_INT, "sinusoidal_pos_embds": BOOL, "initializer_range": NON_NEGATIVE_NUMBER,
        **{key: PROBABILITY for key in ("dropout", "attention_dropout", "qa_dropout", "seq_classif_dropout")},
    }
    size_keys = {"layers": "n_layers", "hidden": "dim", "ffn": "hidden_dim", "vocab": "vocab_size",
                 "positions": "max_position_embeddings"}

    def __init__(
        self,
        vocab_size: int = 30522,
        max_position_embeddings: int = 512,
        sinusoidal_pos_embds: bool = False,
        n_layers: int = 6,
        n_heads: int = 12,
        dim: int = 768,
        hidden_dim: int = 4 * 768,
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        activation: str = "gelu",
        initializer_range: float = 0.02,
        qa_dropout: float = 0.1,
        seq_classif_dropout: float = 0.2,
        pad_token_id: int = 0,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.max_position_embeddings = max_position_embeddings
        self.sinusoidal_pos_embds = sinusoidal_pos_embds
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dim = dim
        self.hidden_dim = hidden_dim
        self.dropout = dropout
        self.attention_dropout = attention_dropout
        self.activation = activation
        self.initializer_range = initializer_range
        self.qa_dropout = qa_dropout
        self.seq_classif_dropout = seq_classif_dropout
        super().__init__(pad_token_id=pad_token_id, **kwargs)
