"""DistilBERT in TensorFlow (Keras 3): the PyTorch model's outline, class for class, on polyformer/tf.

Notation: B batch, T sequence length, C width (dim), H heads, D head dim, N choices.
Layer names are the reference's TF weight names (distilbert/transformer/layer_._0/attention/q_lin/kernel), so
tf_model.h5 files and PyTorch checkpoints (converted on load) of transformers' DistilBERT load as they are.
As in 4.37's TF classes, head_mask is not implemented and the losses have the TF shapes (polyformer/tf/heads.py).
"""

from __future__ import annotations

from typing import Optional

from ...tf.attention import attend, merge_heads, padding_bias, split_heads
from ...tf.backend import tf
from ...tf.heads import classification_loss, span_qa_loss, token_loss
from ...tf.layers import Embedding, Layer, LayerNorm, Linear, activation, dropout, grow_rows, replace_weight, run_layers
from ...tf.modeling import TFPreTrainedModel
from ...outputs import finish
from ...value_rules import one_of
from ...tf.outputs import (TFBaseModelOutput, TFMaskedLMOutput, TFMultipleChoiceModelOutput,
                           TFQuestionAnsweringModelOutput, TFSequenceClassifierOutput, TFTokenClassifierOutput)
from .configuration import DistilBertConfig

LN_EPS = 1e-12
MASKED = -1e30  # added to the scores of padded keys, as the reference does


class TFEmbeddings(Layer):
    """word + position embeddings -> LayerNorm -> dropout."""

    def __init__(self, config: DistilBertConfig, name: str = "embeddings"):
        super().__init__(name=name)
        std = config.initializer_range
        self.word_embeddings = Embedding(config.vocab_size, config.dim, std, "weight", name="word_embeddings")
        self.position_embeddings = Embedding(config.max_position_embeddings, config.dim, std, "embeddings",
                                             name="position_embeddings")
        self.LayerNorm = LayerNorm(config.dim, LN_EPS, name="LayerNorm")
        self.rate = config.dropout

    def call(self, input_ids, inputs_embeds=None, training=False):
        x = self.word_embeddings(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, C)
        x = x + self.position_embeddings(tf.range(tf.shape(x)[1]))
        return dropout(self.LayerNorm(x), self.rate, training)


class TFMultiHeadSelfAttention(Layer):
    def __init__(self, config: DistilBertConfig, name: str = "attention"):
        super().__init__(name=name)
        if config.dim % config.n_heads:
            raise ValueError(f"dim={config.dim} must be divisible by n_heads={config.n_heads}")
        self.n_heads, self.rate = config.n_heads, config.attention_dropout
        std = config.initializer_range
        self.q_lin, self.k_lin, self.v_lin, self.out_lin = (
            Linear(config.dim, config.dim, std=std, name=n) for n in ("q_lin", "k_lin", "v_lin", "out_lin"))

        self.head_dim = config.dim // config.n_heads
        self.pruned_heads = set()

    def prune_heads(self, heads) -> None:
        """Remove attention heads (numbered as in the unpruned layer; heads already removed are skipped):
        their q/k/v output columns and out_lin input rows go, as PyTorch's prune_heads does."""
        heads = set(int(h) for h in heads) - self.pruned_heads
        if not heads:
            return
        original = range(self.n_heads + len(self.pruned_heads))
        kept_heads = [h for h in original if h not in self.pruned_heads | heads]
        kept_columns = tf.constant([h_index * self.head_dim + d for h_index, h in enumerate(
            h for h in original if h not in self.pruned_heads) if h in kept_heads for d in range(self.head_dim)],
            tf.int32)
        for lin in (self.q_lin, self.k_lin, self.v_lin):
            replace_weight(lin, "kernel", tf.gather(lin.kernel, kept_columns, axis=1), "kernel")
            replace_weight(lin, "bias", tf.gather(lin.bias, kept_columns), "bias")
            lin.out_features = len(kept_heads) * self.head_dim
        replace_weight(self.out_lin, "kernel", tf.gather(self.out_lin.kernel, kept_columns, axis=0), "kernel")
        self.out_lin.in_features = len(kept_heads) * self.head_dim
        self.n_heads = len(kept_heads)
        self.pruned_heads |= heads

    def call(self, x, bias, output_attentions=False, training=False):  # x: (B, T, C)
        q, k, v = (split_heads(lin(x), self.n_heads) for lin in (self.q_lin, self.k_lin, self.v_lin))  # (B, H, T, D)
        out, weights = attend(q, k, v, bias, scale_queries=True, dropout=self.rate, training=training)
        return self.out_lin(merge_heads(out)), weights if output_attentions else None


class TFFFN(Layer):
    def __init__(self, config: DistilBertConfig, name: str = "ffn"):
        super().__init__(name=name)
        self.lin1 = Linear(config.dim, config.hidden_dim, std=config.initializer_range, name="lin1")
        self.lin2 = Linear(config.hidden_dim, config.dim, std=config.initializer_range, name="lin2")
        self.activation, self.rate = activation(config.activation), config.dropout

    def call(self, x, training=False):
        return dropout(self.lin2(self.activation(self.lin1(x))), self.rate, training)


class TFTransformerBlock(Layer):
    """Post-LN block:  x = LN(x + attn(x));  x = LN(x + ffn(x))."""

    def __init__(self, config: DistilBertConfig, name: str):
        super().__init__(name=name)
        self.attention = TFMultiHeadSelfAttention(config)
        self.sa_layer_norm = LayerNorm(config.dim, LN_EPS, name="sa_layer_norm")
        self.ffn = TFFFN(config)
        self.output_layer_norm = LayerNorm(config.dim, LN_EPS, name="output_layer_norm")

    def call(self, x, bias, output_attentions=False, training=False):
        attn, weights = self.attention(x, bias, output_attentions=output_attentions, training=training)
        x = self.sa_layer_norm(attn + x)
        return self.output_layer_norm(self.ffn(x, training=training) + x), weights


class TFTransformer(Layer):
    def __init__(self, config: DistilBertConfig, name: str = "transformer"):
        super().__init__(name=name)
        self.layer = [TFTransformerBlock(config, name=f"layer_._{i}") for i in range(config.n_layers)]

    def call(self, x, bias, output_attentions=False, output_hidden_states=False, training=False):
        return run_layers(self.layer, x, bias, output_hidden_states=output_hidden_states,
                          output_attentions=output_attentions, training=training)


class TFDistilBertMainLayer(Layer):
    """The encoder every class holds as `distilbert`."""

    def __init__(self, config: DistilBertConfig, name: str = "distilbert"):
        super().__init__(name=name)
        self.config = config
        self.embeddings = TFEmbeddings(config)
        self.transformer = TFTransformer(config)

    def call(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None, output_attentions=False,
             output_hidden_states=False, training=False) -> TFBaseModelOutput:
        one_of(input_ids, inputs_embeds)
        if head_mask is not None:
            raise NotImplementedError("head_mask is not supported by the TensorFlow DistilBERT classes (nor by 4.37's)")
        x = self.embeddings(input_ids, inputs_embeds, training=training)  # (B, T, C)
        bias = padding_bias(attention_mask, MASKED)
        x, hidden_states, attentions = self.transformer(
            x, bias, output_attentions=output_attentions, output_hidden_states=output_hidden_states, training=training)
        return TFBaseModelOutput(x, hidden_states, attentions)


class TFDistilBertPreTrainedModel(TFPreTrainedModel):
    config_class = DistilBertConfig
    base_model_prefix = "distilbert"

    def __init__(self, config: DistilBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.distilbert = TFDistilBertMainLayer(config)
        if config.pruned_heads:  # a pruned checkpoint's config: its weights have the pruned shapes
            self._prune_heads(config.pruned_heads)

    def _prune_heads(self, heads_to_prune) -> None:
        for layer, heads in heads_to_prune.items():
            self.distilbert.transformer.layer[int(layer)].attention.prune_heads(heads)

    def get_input_embeddings(self):
        return self.distilbert.embeddings.word_embeddings

    def encode(self, *, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None,
               output_attentions=None, output_hidden_states=None, return_dict=None, training=False):
        """Resolve the output flags and run the encoder: (encoder output, return_dict)."""
        output_attentions, output_hidden_states, return_dict = self.config.output_options(
            output_attentions, output_hidden_states, return_dict)
        out = self.distilbert(input_ids, attention_mask=attention_mask, head_mask=head_mask,
                              inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                              output_hidden_states=output_hidden_states, training=training)
        return out, return_dict


class TFDistilBertModel(TFDistilBertPreTrainedModel):
    """The bare encoder: last_hidden_state (B, T, C), optionally all hidden states and attentions.

    Example:
        >>> from polyformer import AutoTokenizer, TFDistilBertModel
        >>> tokenizer = AutoTokenizer.from_pretrained("distilbert-base-uncased")
        >>> model = TFDistilBertModel.from_pretrained("distilbert-base-uncased")
        >>> model(tokenizer("Hello, my dog is cute", return_tensors="tf")).last_hidden_state.shape
        TensorShape([1, 8, 768])
    """

    def call(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None, output_attentions=None,
             output_hidden_states=None, return_dict=None, training=False):
        """input_ids (B, T) or inputs_embeds (B, T, C); attention_mask (B, T), 1 keep / 0 padding."""
        out, return_dict = self.encode(input_ids=input_ids, attention_mask=attention_mask, head_mask=head_mask,
                                       inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                                       output_hidden_states=output_hidden_states, return_dict=return_dict,
                                       training=training)
        return finish(out, return_dict)


class _TFDistilBertLabelledHead(TFDistilBertPreTrainedModel):
    """A head called with the encoder's arguments plus `labels`; `head` turns the encoder output into the
    head's output object."""

    def call(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None, output_attentions=None,
             output_hidden_states=None, return_dict=None, labels=None, training=False):
        out, return_dict = self.encode(input_ids=input_ids, attention_mask=attention_mask, head_mask=head_mask,
                                       inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                                       output_hidden_states=output_hidden_states, return_dict=return_dict,
                                       training=training)
        return finish(self.head(out, labels, training), return_dict)

    def head(self, out: TFBaseModelOutput, labels, training):
        raise NotImplementedError


class TFDistilBertLMHead(Layer):
    """The vocabulary projection: the word embeddings (tied, read from `input_embeddings`) and a bias."""

    def __init__(self, config: DistilBertConfig, input_embeddings: TFEmbeddings, name: str = "vocab_projector"):
        super().__init__(name=name)
        self.input_embeddings = input_embeddings
        self.bias = self.add_weight(name="bias", shape=(config.vocab_size,), initializer="zeros")

    def resize_outputs(self, vocab_size: int, std: float) -> None:
        """The weights are the (already resized) word embeddings; the bias is cut or extended with zeros."""
        replace_weight(self, "bias", grow_rows(self.bias, vocab_size, 0.0), "bias")

    def call(self, x):  # (B, T, C) -> (B, T, vocab_size)
        return tf.matmul(x, self.input_embeddings.word_embeddings.table, transpose_b=True) + self.bias


class TFDistilBertForMaskedLM(_TFDistilBertLabelledHead):
    """Masked-LM head: vocab_transform -> activation -> LayerNorm -> vocab_projector (tied to the word
    embeddings). labels (B, T) in [0, vocab_size) or -100 (ignored); loss (1,)."""

    def __init__(self, config: DistilBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.vocab_transform = Linear(config.dim, config.dim, std=config.initializer_range, name="vocab_transform")
        self.act = activation(config.activation)
        self.vocab_layer_norm = LayerNorm(config.dim, LN_EPS, name="vocab_layer_norm")
        self.vocab_projector = TFDistilBertLMHead(config, self.distilbert.embeddings)

    def get_output_embeddings(self):
        return self.vocab_projector

    def head(self, out, labels, training):
        logits = self.vocab_projector(self.vocab_layer_norm(self.act(self.vocab_transform(out.last_hidden_state))))
        loss = None if labels is None else token_loss(labels, logits)
        return TFMaskedLMOutput(loss, logits, out.hidden_states, out.attentions)


class _ClassifierOnFirstToken(_TFDistilBertLabelledHead):
    """[CLS] -> pre_classifier -> ReLU -> dropout -> classifier (num_outputs)."""

    num_outputs: Optional[int] = None  # None: config.num_labels

    def __init__(self, config: DistilBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        std = config.initializer_range
        self.num_labels = config.num_labels
        self.pre_classifier = Linear(config.dim, config.dim, std=std, name="pre_classifier")
        self.classifier = Linear(config.dim, self.num_outputs or config.num_labels, std=std, name="classifier")

    def classify(self, out: TFBaseModelOutput, training) -> tf.Tensor:
        pooled = tf.nn.relu(self.pre_classifier(out.last_hidden_state[:, 0]))  # (B, C)
        return self.classifier(dropout(pooled, self.config.seq_classif_dropout, training))


class TFDistilBertForSequenceClassification(_ClassifierOnFirstToken):
    """labels (B,): class ids (cross-entropy) or, with num_labels=1, regression targets (MSE); loss (B,)."""

    def head(self, out, labels, training):
        logits = self.classify(out, training)  # (B, num_labels)
        loss = None if labels is None else classification_loss(labels, logits)
        return TFSequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions)


class TFDistilBertForMultipleChoice(_ClassifierOnFirstToken):
    """Scores each of N choices: inputs (B, N, T), logits (B, N), labels (B,) in [0, N); loss (B,)."""

    num_outputs = 1

    def call(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None, output_attentions=None,
             output_hidden_states=None, return_dict=None, labels=None, training=False):
        first = input_ids if input_ids is not None else inputs_embeds
        num_choices = tf.shape(first)[1] if first is not None else None
        input_ids, attention_mask, inputs_embeds = (_flatten_choices(t) for t in (input_ids, attention_mask, inputs_embeds))
        out, return_dict = self.encode(input_ids=input_ids, attention_mask=attention_mask, head_mask=head_mask,
                                       inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                                       output_hidden_states=output_hidden_states, return_dict=return_dict,
                                       training=training)
        logits = tf.reshape(self.classify(out, training), (-1, num_choices))  # (B, N)
        loss = None if labels is None else classification_loss(labels, logits)
        return finish(TFMultipleChoiceModelOutput(loss, logits, out.hidden_states, out.attentions), return_dict)


def _flatten_choices(t: Optional[tf.Tensor]) -> Optional[tf.Tensor]:
    """(B, N, T, ...) -> (B * N, T, ...)"""
    return None if t is None else tf.reshape(t, tf.concat([[-1], tf.shape(t)[2:]], axis=0))


class TFDistilBertForTokenClassification(_TFDistilBertLabelledHead):
    """A label per token: logits (B, T, num_labels), labels (B, T) with -100 ignored; loss (1,)."""

    def __init__(self, config: DistilBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.num_labels = config.num_labels
        self.classifier = Linear(config.dim, config.num_labels, std=config.initializer_range, name="classifier")

    def head(self, out, labels, training):
        logits = self.classifier(dropout(out.last_hidden_state, self.config.dropout, training))
        loss = None if labels is None else token_loss(labels, logits)
        return TFTokenClassifierOutput(loss, logits, out.hidden_states, out.attentions)


class TFDistilBertForQuestionAnswering(TFDistilBertPreTrainedModel):
    """Extractive QA: start/end logits (B, T). loss (B,): the mean of start and end cross-entropy; positions
    outside the sequence are clamped and ignored (as documented; 4.37's TF code fails on them)."""

    def __init__(self, config: DistilBertConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        if config.num_labels != 2:
            raise ValueError(f"config.num_labels should be 2 for question answering, got {config.num_labels}")
        self.qa_outputs = Linear(config.dim, config.num_labels, std=config.initializer_range, name="qa_outputs")

    def call(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None, output_attentions=None,
             output_hidden_states=None, return_dict=None, start_positions=None, end_positions=None, training=False):
        out, return_dict = self.encode(input_ids=input_ids, attention_mask=attention_mask, head_mask=head_mask,
                                       inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                                       output_hidden_states=output_hidden_states, return_dict=return_dict,
                                       training=training)
        logits = self.qa_outputs(dropout(out.last_hidden_state, self.config.qa_dropout, training))  # (B, T, 2)
        start_logits, end_logits = logits[..., 0], logits[..., 1]
        loss = span_qa_loss(start_logits, end_logits, start_positions, end_positions)
        output = TFQuestionAnsweringModelOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)
        return finish(output, return_dict)
