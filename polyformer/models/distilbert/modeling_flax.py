"""DistilBERT in Flax: the same encoder as modeling_torch.py, as 4.37's Flax classes compute it.

Notation: B batch, T sequence length, C width (dim), H heads, D head dim, N choices.
Parameter paths are 4.37's (`distilbert/transformer/layer/0/attention/q_lin/kernel`), which are the
PyTorch checkpoint keys under the generic rule of polyformer/jx/convert.py.

Differences from the PyTorch classes, all as in 4.37: no `inputs_embeds`, no labels and no loss;
`head_mask` is accepted and ignored; the sinusoidal position table (sinusoidal_pos_embds) is a constant,
not a parameter; masked keys get -1e30 added to their scores. With `return_dict=False` the encoder's
tuple is (last_hidden_state, attentions, hidden_states) — attentions before hidden states, unlike
PyTorch — the heads put their logits first, and the multiple-choice head drops the first of the
two (it returns (logits, hidden_states) when both are asked for).
"""

from __future__ import annotations

from functools import partial
import flax.linen as nn
import jax.numpy as jnp
import numpy as np

from ...jx.layers import Module, Stack, TiedProjection, activation, attend, dense, embed, merge_heads, split_heads
from ...jx.modeling import FlaxPreTrainedModel
from ...jx.outputs import (
    FlaxBaseModelOutput,
    FlaxMaskedLMOutput,
    FlaxMultipleChoiceModelOutput,
    FlaxQuestionAnsweringModelOutput,
    FlaxSequenceClassifierOutput,
    FlaxTokenClassifierOutput,
    tuple_of,
)
from .configuration import DistilBertConfig

LN_EPS = 1e-12
MASKED = -1e30  # added to the scores of padding keys


def sinusoidal_positions(num_positions: int, dim: int) -> np.ndarray:
    """(num_positions, dim) float32: sin on even dims, cos on odd, angle pos / 10000^(2i/dim) in float64."""
    pos, i = np.arange(num_positions)[:, None], np.arange(dim)[None, :]
    angles = pos * (1.0 / np.power(10000.0, (2 * (i // 2)) / dim))
    return np.where(i % 2 == 0, np.sin(angles), np.cos(angles)).astype(np.float32)


class Embeddings(Module):
    """word + position embeddings -> LayerNorm -> dropout."""

    @nn.compact
    def __call__(self, input_ids, deterministic: bool = True):
        c, length = self.config, input_ids.shape[1]
        x = embed(c.vocab_size, c.dim, c, "word_embeddings")(input_ids.astype("i4"))  # (B, T, C)
        if c.sinusoidal_pos_embds:
            positions = jnp.asarray(sinusoidal_positions(c.max_position_embeddings, c.dim)[:length]).astype(x.dtype)
        else:
            positions = embed(c.max_position_embeddings, c.dim, c, "position_embeddings")(jnp.arange(length))
        x = nn.LayerNorm(epsilon=LN_EPS, dtype=self.dtype, name="LayerNorm")(x + positions)
        return nn.Dropout(c.dropout)(x, deterministic=deterministic)


class MultiHeadSelfAttention(Module):
    @nn.compact
    def __call__(self, x, bias, deterministic: bool = True, output_attentions: bool = False):  # x: (B, T, C)
        c = self.config
        if c.dim % c.n_heads:
            raise ValueError(f"dim={c.dim} must be divisible by n_heads={c.n_heads}")
        q, k, v = (split_heads(dense(c.dim, c, self.dtype, name)(x), c.n_heads) for name in ("q_lin", "k_lin", "v_lin"))
        rng = self.make_rng("dropout") if not deterministic and c.attention_dropout > 0 else None
        out, weights = attend(q, k, v, bias, dtype=self.dtype, dropout_rate=c.attention_dropout, dropout_rng=rng)
        return dense(c.dim, c, self.dtype, "out_lin")(merge_heads(out)), weights  # (B, T, C), (B, H, T, T)


class FFN(Module):
    @nn.compact
    def __call__(self, x, deterministic: bool = True):
        c = self.config
        x = dense(c.dim, c, self.dtype, "lin2")(activation(c.activation)(dense(c.hidden_dim, c, self.dtype, "lin1")(x)))
        return nn.Dropout(c.dropout)(x, deterministic=deterministic)


class TransformerBlock(Module):
    """Post-LN block:  x = LN(x + attn(x));  x = LN(x + ffn(x))."""

    @nn.compact
    def __call__(self, x, bias, deterministic: bool = True, output_attentions: bool = False):
        attn, weights = MultiHeadSelfAttention(self.config, self.dtype, name="attention")(x, bias, deterministic)
        x = nn.LayerNorm(epsilon=LN_EPS, dtype=self.dtype, name="sa_layer_norm")(attn + x)
        x = nn.LayerNorm(epsilon=LN_EPS, dtype=self.dtype, name="output_layer_norm")(
            FFN(self.config, self.dtype, name="ffn")(x, deterministic) + x)
        return x, weights


class Transformer(Module):
    @nn.compact
    def __call__(self, x, bias, *, deterministic: bool, output_attentions: bool, output_hidden_states: bool):
        block = partial(TransformerBlock, self.config, self.dtype)
        return Stack(block, self.config.n_layers, name="layer")(
            x, bias, deterministic=deterministic, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states)


class DistilBertModule(Module):
    """The bare encoder: ids (B, T), mask (B, T) -> FlaxBaseModelOutput."""

    @nn.compact
    def __call__(self, input_ids, attention_mask, deterministic: bool = True, output_attentions: bool = False,
                 output_hidden_states: bool = False):
        x = Embeddings(self.config, self.dtype, name="embeddings")(input_ids, deterministic)
        bias = (MASKED * (1.0 - attention_mask.astype(self.dtype)))[:, None, None, :]  # (B, 1, 1, S)
        x, hidden_states, attentions = Transformer(self.config, self.dtype, name="transformer")(
            x, bias, deterministic=deterministic, output_attentions=output_attentions,
            output_hidden_states=output_hidden_states)
        return FlaxBaseModelOutput(x, hidden_states, attentions)


class _Head(Module):
    """A task head on the bare encoder, called as the encoder is."""

    @nn.compact
    def __call__(self, input_ids, attention_mask, deterministic: bool = True, output_attentions: bool = False,
                 output_hidden_states: bool = False):
        encoder = DistilBertModule(self.config, self.dtype, name="distilbert")
        out = encoder(input_ids, attention_mask, deterministic=deterministic, output_attentions=output_attentions,
                      output_hidden_states=output_hidden_states)
        return self.head(encoder, out, deterministic)

    def dense(self, features: int, name: str):
        return dense(features, self.config, self.dtype, name)

    def pool_first(self, h, deterministic: bool):
        """[CLS] -> pre_classifier -> ReLU -> dropout: (B, T, C) -> (B, C)."""
        pooled = nn.relu(self.dense(self.config.dim, "pre_classifier")(h[:, 0]))
        return nn.Dropout(self.config.seq_classif_dropout)(pooled, deterministic=deterministic)


class MaskedLMModule(_Head):
    """vocab_transform -> activation -> LayerNorm -> vocab_projector (tied: the word embeddings + a bias)."""

    def head(self, encoder, out, deterministic):
        c = self.config
        h = activation(c.activation)(self.dense(c.dim, "vocab_transform")(out.last_hidden_state))
        h = nn.LayerNorm(epsilon=LN_EPS, dtype=self.dtype, name="vocab_layer_norm")(h)
        if c.tie_word_embeddings:
            table = encoder.variables["params"]["embeddings"]["word_embeddings"]["embedding"]  # (V, C)
            logits = TiedProjection(c.vocab_size, self.dtype, name="vocab_projector")(h, table)
        else:
            logits = self.dense(c.vocab_size, "vocab_projector")(h)
        return FlaxMaskedLMOutput(logits, out.hidden_states, out.attentions)  # (B, T, V)


class SequenceClassificationModule(_Head):
    def head(self, encoder, out, deterministic):
        logits = self.dense(self.config.num_labels, "classifier")(self.pool_first(out.last_hidden_state, deterministic))
        return FlaxSequenceClassifierOutput(logits, out.hidden_states, out.attentions)  # (B, num_labels)


class MultipleChoiceModule(_Head):
    """Inputs (B, N, T) are scored as B * N sequences; logits (B, N)."""

    def __call__(self, input_ids, attention_mask, deterministic: bool = True, output_attentions: bool = False,
                 output_hidden_states: bool = False):
        num_choices = input_ids.shape[1]
        flat = (t.reshape(-1, t.shape[-1]) for t in (input_ids, attention_mask))
        out = super().__call__(*flat, deterministic=deterministic, output_attentions=output_attentions,
                               output_hidden_states=output_hidden_states)
        return FlaxMultipleChoiceModelOutput(out.logits.reshape(-1, num_choices), out.hidden_states, out.attentions)

    def head(self, encoder, out, deterministic):
        logits = self.dense(1, "classifier")(self.pool_first(out.last_hidden_state, deterministic))
        return FlaxMultipleChoiceModelOutput(logits, out.hidden_states, out.attentions)  # (B * N, 1)


class TokenClassificationModule(_Head):
    def head(self, encoder, out, deterministic):
        h = nn.Dropout(self.config.dropout)(out.last_hidden_state, deterministic=deterministic)
        logits = self.dense(self.config.num_labels, "classifier")(h)
        return FlaxTokenClassifierOutput(logits, out.hidden_states, out.attentions)  # (B, T, num_labels)


class QuestionAnsweringModule(_Head):
    def head(self, encoder, out, deterministic):
        if self.config.num_labels != 2:
            raise ValueError(f"config.num_labels should be 2 for question answering, got {self.config.num_labels}")
        h = nn.Dropout(self.config.qa_dropout)(out.last_hidden_state, deterministic=deterministic)
        logits = self.dense(2, "qa_outputs")(h)  # (B, T, 2)
        return FlaxQuestionAnsweringModelOutput(logits[..., 0], logits[..., 1], out.hidden_states, out.attentions)


class FlaxDistilBertPreTrainedModel(FlaxPreTrainedModel):
    config_class = DistilBertConfig
    base_model_prefix = "distilbert"
    _tuple_drop = 0  # tail entries (attentions, hidden_states) the return_dict=False tuple drops

    def __call__(self, input_ids, attention_mask=None, head_mask=None, params: dict = None, dropout_rng=None,
                 train: bool = False, output_attentions=None, output_hidden_states=None, return_dict=None):
        """input_ids (B, T) ((B, N, T) for multiple choice); attention_mask like it, 1 keep / 0 padding;
        `params` instead of `model.params`; `train=True` with a `dropout_rng` turns dropout on.
        `head_mask` is ignored, as in 4.37."""
        output_attentions, output_hidden_states, return_dict = self.output_options(
            output_attentions, output_hidden_states, return_dict)
        if attention_mask is None:
            attention_mask = jnp.ones_like(input_ids)
        out = self._apply(params, jnp.asarray(input_ids, "i4"), jnp.asarray(attention_mask, "i4"),
                          dropout_rng=dropout_rng, train=train, output_attentions=output_attentions,
                          output_hidden_states=output_hidden_states)
        return out if return_dict else tuple_of(out, ("attentions", "hidden_states"), self._tuple_drop)


class FlaxDistilBertModel(FlaxDistilBertPreTrainedModel):
    """The bare encoder: last_hidden_state (B, T, C), optionally all hidden states and attentions.

    Example:
        >>> from polyformer import AutoTokenizer, FlaxDistilBertModel
        >>> tokenizer = AutoTokenizer.from_pretrained("distilbert-base-uncased")
        >>> model = FlaxDistilBertModel.from_pretrained("distilbert-base-uncased")
        >>> model(**tokenizer("Hello, my dog is cute", return_tensors="jax")).last_hidden_state.shape
        (1, 8, 768)
    """

    module_class = DistilBertModule


class FlaxDistilBertForMaskedLM(FlaxDistilBertPreTrainedModel):
    """Masked-LM head: logits (B, T, vocab_size)."""

    module_class = MaskedLMModule


class FlaxDistilBertForSequenceClassification(FlaxDistilBertPreTrainedModel):
    """[CLS] -> pre_classifier -> ReLU -> dropout -> classifier: logits (B, num_labels)."""

    module_class = SequenceClassificationModule


class FlaxDistilBertForMultipleChoice(FlaxDistilBertPreTrainedModel):
    """Scores each of N choices: inputs (B, N, T), logits (B, N)."""

    module_class = MultipleChoiceModule
    _tuple_drop = 1  # 4.37 returns (logits,) + encoder_tuple[2:]


class FlaxDistilBertForTokenClassification(FlaxDistilBertPreTrainedModel):
    """A label per token: logits (B, T, num_labels)."""

    module_class = TokenClassificationModule


class FlaxDistilBertForQuestionAnswering(FlaxDistilBertPreTrainedModel):
    """Extractive QA: start_logits, end_logits (B, T)."""

    module_class = QuestionAnsweringModule
