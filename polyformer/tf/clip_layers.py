"""CLIP's pre-LayerNorm encoder and causal text tower in TensorFlow, under the reference's TF weight names.

GroupViT's text tower is this text tower, and its vision stages are stacks of these encoder layers.
Notation: B batch, T query length, S key length, C width (hidden_size), H heads, D head dim.

    layers_._N:  x = x + self_attn(layer_norm1(x))        self_attn/{q,k,v,out}_proj
                 x = x + mlp(layer_norm2(x))              mlp/fc1 -> activation -> mlp/fc2

    text tower: embeddings/{token_embedding, position_embedding} --encoder/layers_._N (causal: -10000 on
    future keys; padded keys -1e8, as 4.37's TF code)--> final_layer_norm --state at end-of-text--> pooler_output
"""

from __future__ import annotations

from typing import Optional

from .attention import add_biases, attend, causal_bias, merge_heads, padding_bias, split_heads
from .backend import tf
from .layers import Embedding, Layer, LayerNorm, Linear, activation, run_layers
from .outputs import TFBaseModelOutputWithPooling

FUTURE, PADDED = -10000.0, -1e8
LEGACY_EOS_TOKEN_ID = 2  # configs saved before transformers 4.31: pool at the highest id


class TFCLIPAttention(Layer):
    """Multi-head attention; keys and values come from `context` when given (cross-attention)."""

    def __init__(self, config, name: str = "self_attn"):
        super().__init__(name=name)
        width, self.num_heads = config.hidden_size, config.num_attention_heads
        if width % self.num_heads:
            raise ValueError(f"hidden_size={width} must be divisible by num_attention_heads={self.num_heads}")
        self.rate = config.attention_dropout
        std = config.initializer_range
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (
            Linear(width, width, std=std, name=n) for n in ("q_proj", "k_proj", "v_proj", "out_proj"))

    def call(self, x, bias=None, context=None, output_attentions=False, training=False):  # x: (B, T, C)
        source = x if context is None else context
        q, k, v = (split_heads(proj(t), self.num_heads)
                   for proj, t in ((self.q_proj, x), (self.k_proj, source), (self.v_proj, source)))  # (B, H, ., D)
        out, weights = attend(q, k, v, bias, dropout=self.rate, training=training)
        return self.out_proj(merge_heads(out)), weights if output_attentions else None


class TFCLIPMLP(Layer):
    """fc1 -> activation -> fc2; widths default to hidden_size -> intermediate_size -> hidden_size."""

    def __init__(self, config, hidden_size: Optional[int] = None, intermediate_size: Optional[int] = None,
                 output_size: Optional[int] = None, name: str = "mlp"):
        super().__init__(name=name)
        hidden_size = hidden_size or config.hidden_size
        inner = intermediate_size or config.intermediate_size
        self.act = activation(config.hidden_act)
        self.fc1 = Linear(hidden_size, inner, std=config.initializer_range, name="fc1")
        self.fc2 = Linear(inner, output_size or hidden_size, std=config.initializer_range, name="fc2")

    def call(self, x):
        return self.fc2(self.act(self.fc1(x)))


class TFCLIPEncoderLayer(Layer):
    def __init__(self, config, name: str):
        super().__init__(name=name)
        self.self_attn = TFCLIPAttention(config)
        self.layer_norm1 = LayerNorm(config.hidden_size, config.layer_norm_eps, name="layer_norm1")
        self.mlp = TFCLIPMLP(config)
        self.layer_norm2 = LayerNorm(config.hidden_size, config.layer_norm_eps, name="layer_norm2")

    def call(self, x, bias=None, output_attentions=False, training=False):
        h, weights = self.self_attn(self.layer_norm1(x), bias, output_attentions=output_attentions, training=training)
        x = x + h
        return x + self.mlp(self.layer_norm2(x)), weights


class TFCLIPEncoder(Layer):
    def __init__(self, config, num_layers: Optional[int] = None, name: str = "encoder"):
        super().__init__(name=name)
        n = config.num_hidden_layers if num_layers is None else num_layers
        self.layers = [TFCLIPEncoderLayer(config, name=f"layers_._{i}") for i in range(n)]

    def call(self, x, bias=None, output_hidden_states=False, output_attentions=False, training=False):
        return run_layers(self.layers, x, bias, output_hidden_states=output_hidden_states,
                          output_attentions=output_attentions, training=training)


class TFCLIPTextEmbeddings(Layer):
    def __init__(self, config, name: str = "embeddings"):
        super().__init__(name=name)
        std = config.initializer_factor * config.initializer_range
        self.token_embedding = Embedding(config.vocab_size, config.hidden_size, std, "weight", name="token_embedding")
        self.position_embedding = Embedding(config.max_position_embeddings, config.hidden_size, std, "embeddings",
                                            name="position_embedding")

    def call(self, input_ids, position_ids=None):
        if position_ids is None:
            position_ids = tf.range(tf.shape(input_ids)[-1])[None]
        return self.token_embedding(input_ids) + self.position_embedding(position_ids)  # (B, T, C)


class TFCLIPTextTransformer(Layer):
    """The causal text tower: (B, T) ids -> last_hidden_state (B, T, C) after the final LayerNorm and
    pooler_output (B, C), the state at each row's first eos_token_id (legacy eos 2: its highest id)."""

    def __init__(self, config, name: str = "text_model"):
        super().__init__(name=name)
        self.config = config
        self.embeddings = TFCLIPTextEmbeddings(config)
        self.encoder = TFCLIPEncoder(config)
        self.final_layer_norm = LayerNorm(config.hidden_size, config.layer_norm_eps, name="final_layer_norm")

    def call(self, input_ids=None, attention_mask=None, position_ids=None, output_attentions=False,
             output_hidden_states=False, training=False) -> TFBaseModelOutputWithPooling:
        if input_ids is None:
            raise ValueError("You have to specify input_ids")
        x = self.embeddings(input_ids, position_ids)
        length = tf.shape(input_ids)[1]
        bias = add_biases(causal_bias(length, length, FUTURE), padding_bias(attention_mask, PADDED))
        x, hidden_states, attentions = self.encoder(x, bias, output_hidden_states=output_hidden_states,
                                                    output_attentions=output_attentions, training=training)
        x = self.final_layer_norm(x)
        if self.config.eos_token_id == LEGACY_EOS_TOKEN_ID:
            index = tf.argmax(input_ids, axis=-1, output_type=tf.int32)
        else:
            index = tf.argmax(tf.cast(input_ids == self.config.eos_token_id, tf.int32), axis=-1, output_type=tf.int32)
        return TFBaseModelOutputWithPooling(x, tf.gather(x, index, batch_dims=1), hidden_states, attentions)


def contrastive_loss(logits_per_text: tf.Tensor) -> tf.Tensor:
    """CLIP's symmetric loss on (N, N) text-image logits (text i goes with image i), shape (1,)."""
    labels = tf.range(tf.shape(logits_per_text)[0])
    mean_ce = lambda logits: tf.reduce_mean(  # noqa: E731
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    return ((mean_ce(logits_per_text) + mean_ce(tf.transpose(logits_per_text))) / 2.0)[None]
