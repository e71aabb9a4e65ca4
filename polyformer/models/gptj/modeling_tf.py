"""GPT-J in TensorFlow (Keras 3): parallel-residual blocks with rotary positions, on polyformer/tf.

Notation: B batch, T new tokens, S = past + T keys (or the static cache's length), C width, H heads,
D head dim, L layers, V vocabulary.

Layer names are the reference's TF weight names (transformer/h_._0/attn/q_proj/kernel, lm_head, score,
qa_outputs). The numbers follow 4.37's TF code: future keys get -1e9 and padded keys -10000 on the scores,
which are float32; the MLP's dropout rate is embd_pdrop. past_key_values are per layer (key, value), each
(B, H, S, D). generate() (polyformer/tf/generation.py) decodes on a static cache instead: `cache_index` is
the slot the single new token writes to, and keys past it are masked as future ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional, Tuple

from ...outputs import finish
from ...tf.attention import add_biases, attend, causal_bias, merge_heads, padding_bias, split_heads
from ...tf.backend import tf
from ...tf.generation import TFGenerationMixin
from ...tf.heads import causal_lm_loss, classification_loss, last_token_pool, span_qa_loss
from ...tf.layers import Embedding, Layer, LayerNorm, Linear, activation, dropout
from ...tf.modeling import TFPreTrainedModel
from ...tf.outputs import (TFBaseModelOutputWithPast, TFCausalLMOutputWithPast, TFQuestionAnsweringModelOutput,
                           TFSequenceClassifierOutputWithPast)
from ...tf.rotary import Rotary
from ...value_rules import one_of
from .configuration import GPTJConfig

logger = logging.getLogger(__name__)

FUTURE, PADDED = -1e9, -10000.0


@dataclass
class Step:
    """What every block of one forward shares: rotary tables at this forward's positions, the additive
    mask (B|1, 1, T, S), and the static cache slot (None: past_key_values are concatenated)."""

    rotary: Rotary
    tables: Tuple[tf.Tensor, tf.Tensor]
    bias: tf.Tensor
    cache_index: Optional[tf.Tensor] = None

    def keys_values(self, past, k, v):
        """The new (B, H, T, D) keys / values with the layer's past: appended, or written at cache_index (T = 1)."""
        if past is None:
            return k, v
        if self.cache_index is None:
            return tf.concat([past[0], k], axis=2), tf.concat([past[1], v], axis=2)
        slot = tf.one_hot(self.cache_index, tf.shape(past[0])[2], dtype=k.dtype)[:, None]  # (S, 1); the slot holds 0
        return past[0] + slot * k, past[1] + slot * v


class TFGPTJAttention(Layer):
    def __init__(self, config: GPTJConfig, name: str = "attn"):
        super().__init__(name=name)
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd={config.n_embd} must be divisible by n_head={config.n_head}")
        self.n_head = config.n_head
        self.attn_pdrop, self.resid_pdrop = config.attn_pdrop, config.resid_pdrop
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (
            Linear(config.n_embd, config.n_embd, use_bias=False, std=config.initializer_range, name=n)
            for n in ("q_proj", "k_proj", "v_proj", "out_proj"))

    def call(self, x, step: Step, past=None, output_attentions=False, training=False):  # x: (B, T, C)
        q, k, v = (split_heads(proj(x), self.n_head) for proj in (self.q_proj, self.k_proj, self.v_proj))  # (B, H, T, D)
        q, k = step.rotary.rotate(q, step.tables), step.rotary.rotate(k, step.tables)
        k, v = step.keys_values(past, k, v)  # (B, H, S, D)
        out, weights = attend(q, k, v, step.bias, dropout=self.attn_pdrop, training=training)
        out = dropout(self.out_proj(merge_heads(out)), self.resid_pdrop, training)
        return out, (k, v), weights if output_attentions else None


class TFGPTJMLP(Layer):
    def __init__(self, config: GPTJConfig, name: str = "mlp"):
        super().__init__(name=name)
        inner = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        self.fc_in = Linear(config.n_embd, inner, std=config.initializer_range, name="fc_in")
        self.fc_out = Linear(inner, config.n_embd, std=config.initializer_range, name="fc_out")
        self.act, self.rate = activation(config.activation_function), config.embd_pdrop

    def call(self, x, training=False):
        return dropout(self.fc_out(self.act(self.fc_in(x))), self.rate, training)


class TFGPTJBlock(Layer):
    """x' = x + attn(ln_1(x)) + mlp(ln_1(x)): one LayerNorm feeds both branches."""

    def __init__(self, config: GPTJConfig, name: str):
        super().__init__(name=name)
        self.ln_1 = LayerNorm(config.n_embd, config.layer_norm_epsilon, name="ln_1")
        self.attn = TFGPTJAttention(config)
        self.mlp = TFGPTJMLP(config)

    def call(self, x, step: Step, past=None, output_attentions=False, training=False):
        h = self.ln_1(x)
        attn, present, weights = self.attn(h, step, past, output_attentions=output_attentions, training=training)
        return attn + self.mlp(h, training=training) + x, present, weights


class TFGPTJMainLayer(Layer):
    """wte (+ wte(token_type_ids)) -> drop -> h -> ln_f, held by every class as `transformer`."""

    def __init__(self, config: GPTJConfig, name: str = "transformer"):
        super().__init__(name=name)
        head_dim = config.n_embd // config.n_head
        if config.rotary_dim is not None and not 0 < config.rotary_dim <= head_dim:
            raise ValueError(f"rotary_dim={config.rotary_dim} must lie in (0, head_dim={head_dim}]")
        self.config = config
        self.wte = Embedding(config.vocab_size, config.n_embd, config.initializer_range, "weight", name="wte")
        self.h = [TFGPTJBlock(config, name=f"h_._{i}") for i in range(config.n_layer)]
        self.ln_f = LayerNorm(config.n_embd, config.layer_norm_epsilon, name="ln_f")
        self.rotary = Rotary(config.rotary_dim or head_dim)

    def call(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None, position_ids=None,
             head_mask=None, inputs_embeds=None, use_cache=False, output_attentions=False, output_hidden_states=False,
             training=False, cache_index=None) -> TFBaseModelOutputWithPast:
        one_of(input_ids, inputs_embeds)
        if head_mask is not None:
            raise NotImplementedError("head_mask is not supported by the TensorFlow GPT-J classes (nor by 4.37's)")
        x = self.wte(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, C)
        if token_type_ids is not None:  # token types share the word embeddings
            x = x + self.wte(token_type_ids)
        x = dropout(x, self.config.embd_pdrop, training)
        length = tf.shape(x)[1]
        seen = 0 if past_key_values is None else tf.shape(past_key_values[0][0])[2]
        start = seen if cache_index is None else cache_index
        if position_ids is None:
            position_ids = tf.range(start, start + length)[None]  # (1, T)
        tf.debugging.assert_less(position_ids, tf.cast(self.config.n_positions, position_ids.dtype),
                                 message=f"position_ids must lie in [0, n_positions={self.config.n_positions})")
        keys = seen + length if cache_index is None else seen
        bias = add_biases(causal_bias(length, keys, FUTURE, offset=start), padding_bias(attention_mask, PADDED))
        step = Step(self.rotary, self.rotary.tables(position_ids), bias, cache_index)
        past = past_key_values or (None,) * len(self.h)
        presents, hidden_states, attentions = (), (), ()
        for block, layer_past in zip(self.h, past):
            hidden_states += (x,)
            x, present, weights = block(x, step, layer_past, output_attentions=output_attentions, training=training)
            presents += (present,)
            attentions += (weights,)
        x = self.ln_f(x)
        return TFBaseModelOutputWithPast(x, presents if use_cache else None,
                                         hidden_states + (x,) if output_hidden_states else None,
                                         attentions if output_attentions else None)


class TFGPTJPreTrainedModel(TFPreTrainedModel):
    config_class = GPTJConfig
    base_model_prefix = "transformer"

    def __init__(self, config: GPTJConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.transformer = TFGPTJMainLayer(config)

    def get_input_embeddings(self):
        return self.transformer.wte

    def decode(self, *, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
               position_ids=None, head_mask=None, inputs_embeds=None, use_cache=None, output_attentions=None,
               output_hidden_states=None, return_dict=None, training=False):
        """Resolve the flags from the config and run the decoder: (decoder output, return_dict)."""
        output_attentions, output_hidden_states, return_dict = self.config.output_options(
            output_attentions, output_hidden_states, return_dict)
        use_cache = self.config.use_cache if use_cache is None else bool(use_cache)
        out = self.transformer(input_ids, past_key_values=past_key_values, attention_mask=attention_mask,
                               token_type_ids=token_type_ids, position_ids=position_ids, head_mask=head_mask,
                               inputs_embeds=inputs_embeds, use_cache=use_cache, output_attentions=output_attentions,
                               output_hidden_states=output_hidden_states, training=training)
        return out, return_dict


class TFGPTJModel(TFGPTJPreTrainedModel):
    """The bare decoder: last_hidden_state (B, T, C), past_key_values, hidden states, attentions.

    Example:
        >>> from polyformer import GPTJConfig, TFGPTJModel
        >>> model = TFGPTJModel(GPTJConfig(n_layer=2, n_embd=64, n_head=4, rotary_dim=8, vocab_size=100))
        >>> model(tf.constant([[1, 2, 3]])).last_hidden_state.shape
        TensorShape([1, 3, 64])
    """

    def call(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None, position_ids=None,
             head_mask=None, inputs_embeds=None, use_cache=None, output_attentions=None, output_hidden_states=None,
             return_dict=None, training=False):
        """input_ids (B, T) or inputs_embeds (B, T, C): the new tokens; past_key_values per layer (key, value);
        attention_mask (B, past + T), 1 keep / 0 padding; position_ids (B|1, T), default past .. past + T - 1."""
        out, return_dict = self.decode(input_ids=input_ids, past_key_values=past_key_values, attention_mask=attention_mask,
                                       token_type_ids=token_type_ids, position_ids=position_ids, head_mask=head_mask,
                                       inputs_embeds=inputs_embeds, use_cache=use_cache, output_attentions=output_attentions,
                                       output_hidden_states=output_hidden_states, return_dict=return_dict,
                                       training=training)
        return finish(out, return_dict)


class _TFGPTJLabelledHead(TFGPTJPreTrainedModel):
    """A head called with the decoder's arguments plus `labels`; `head` turns the decoder output into the
    head's output object."""

    def call(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None, position_ids=None,
             head_mask=None, inputs_embeds=None, labels=None, use_cache=None, output_attentions=None,
             output_hidden_states=None, return_dict=None, training=False):
        out, return_dict = self.decode(input_ids=input_ids, past_key_values=past_key_values, attention_mask=attention_mask,
                                       token_type_ids=token_type_ids, position_ids=position_ids, head_mask=head_mask,
                                       inputs_embeds=inputs_embeds, use_cache=use_cache, output_attentions=output_attentions,
                                       output_hidden_states=output_hidden_states, return_dict=return_dict,
                                       training=training)
        return finish(self.head(out, input_ids, labels), return_dict)

    def head(self, out: TFBaseModelOutputWithPast, input_ids, labels):
        raise NotImplementedError


class TFGPTJForCausalLM(TFGenerationMixin, _TFGPTJLabelledHead):
    """GPT-J with its LM head (lm_head, with bias). labels (B, T) are shifted inside, -100 ignored; loss (1,).
    generate(): greedy and sampling (polyformer/tf/generation.py).

    Example:
        >>> from polyformer import AutoTokenizer, TFGPTJForCausalLM
        >>> model = TFGPTJForCausalLM.from_pretrained("EleutherAI/gpt-j-6B")
        >>> model.generate(tokenizer("Hello", return_tensors="tf").input_ids, max_new_tokens=8)
    """

    def __init__(self, config: GPTJConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.lm_head = Linear(config.n_embd, config.vocab_size, std=config.initializer_range, name="lm_head")

    def get_output_embeddings(self):
        return self.lm_head

    def head(self, out, input_ids, labels):
        logits = tf.cast(self.lm_head(out.last_hidden_state), tf.float32)  # (B, T, V)
        loss = None if labels is None else causal_lm_loss(labels, logits)
        return TFCausalLMOutputWithPast(loss, logits, out.past_key_values, out.hidden_states, out.attentions)

    def prefill(self, input_ids, attention_mask, position_ids):
        out = self.transformer(input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=True)
        return tf.cast(self.lm_head(out.last_hidden_state[:, -1]), tf.float32), out.past_key_values

    def decode_step(self, token, attention_mask, position_ids, cache, index):
        out = self.transformer(token, past_key_values=cache, attention_mask=attention_mask, position_ids=position_ids,
                               use_cache=True, cache_index=index)
        return tf.cast(self.lm_head(out.last_hidden_state[:, -1]), tf.float32), out.past_key_values


class TFGPTJForSequenceClassification(_TFGPTJLabelledHead):
    """score (no bias) on each row's last token: with pad_token_id and input_ids the token before the first
    pad, otherwise the last position (as documented; 4.37's TF code returns unpooled (B, T, num_labels)
    logits there). labels (B,): class ids or, with num_labels=1, regression targets; loss (B,)."""

    def __init__(self, config: GPTJConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        self.num_labels = config.num_labels
        self.score = Linear(config.n_embd, config.num_labels, use_bias=False, std=config.initializer_range, name="score")

    def head(self, out, input_ids, labels):
        pad = self.config.pad_token_id
        if labels is not None and pad is None and out.last_hidden_state.shape[0] not in (1, None):
            raise ValueError("Cannot handle batch sizes > 1 if no padding token is defined.")
        if pad is not None and input_ids is None:
            logger.warning("%s will not detect padding tokens in `inputs_embeds`: pooling the last position of each row",
                           type(self).__name__)
        logits = self.score(last_token_pool(out.last_hidden_state, input_ids, pad))  # (B, num_labels)
        loss = None if labels is None else classification_loss(labels, logits)
        return TFSequenceClassifierOutputWithPast(loss, logits, out.past_key_values, out.hidden_states, out.attentions)


class TFGPTJForQuestionAnswering(TFGPTJPreTrainedModel):
    """Extractive QA: qa_outputs -> start/end logits (B, T). loss (B,): the mean of start and end cross-entropy;
    positions outside the sequence are clamped and ignored (as documented; 4.37's TF code fails on them)."""

    def __init__(self, config: GPTJConfig, *inputs, **kwargs):
        super().__init__(config, *inputs, **kwargs)
        if config.num_labels != 2:
            raise ValueError(f"config.num_labels should be 2 for question answering, got {config.num_labels}")
        self.qa_outputs = Linear(config.n_embd, config.num_labels, std=config.initializer_range, name="qa_outputs")

    def call(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None, position_ids=None,
             head_mask=None, inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
             output_hidden_states=None, return_dict=None, training=False):
        out, return_dict = self.decode(input_ids=input_ids, past_key_values=past_key_values, attention_mask=attention_mask,
                                       token_type_ids=token_type_ids, position_ids=position_ids, head_mask=head_mask,
                                       inputs_embeds=inputs_embeds, use_cache=False, output_attentions=output_attentions,
                                       output_hidden_states=output_hidden_states, return_dict=return_dict,
                                       training=training)
        logits = self.qa_outputs(out.last_hidden_state)  # (B, T, 2)
        start_logits, end_logits = logits[..., 0], logits[..., 1]
        loss = span_qa_loss(start_logits, end_logits, start_positions, end_positions)
        output = TFQuestionAnsweringModelOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)
        return finish(output, return_dict)
