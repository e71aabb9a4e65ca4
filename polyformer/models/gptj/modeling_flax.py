"""GPT-J in Flax: the decoder of modeling_torch.py, as 4.37's Flax classes compute it, with the KV cache
in the "cache" collection and a jit-compiled `generate()` (polyformer/jx/generation.py).

Notation: B batch, T new tokens, S keys (S_max once a cache is used), C width (n_embd), H heads,
D head dim, R rotary dims, V vocabulary.
Parameter paths are 4.37's: `transformer/wte/embedding`, `transformer/h/0/{ln_1, attn/{q,k,v,out}_proj,
mlp/{fc_in,fc_out}}`, `transformer/ln_f`, `lm_head`; the cache of layer i is at
`[transformer/]h/<i>/attn/{cached_key, cached_value, cache_index}`, keys and values (B, S_max, H, D).

As 4.37's Flax GPT-J (and unlike its PyTorch one): scores are q/sqrt(D) . k plus dtype-min where masked
(so a query row that sees no key attends uniformly to all); positions default to arange(T) whatever the
padding. Where 4.37 fails, this works: rotary_dim=None rotates whole heads; tied embeddings give lm_head
only a bias on the word embeddings.
"""

from __future__ import annotations

from functools import partial
import flax.linen as nn
import jax
import jax.numpy as jnp

from ...jx.generation import FlaxGenerationMixin
from ...jx.layers import (
    Module, Stack, TiedProjection, activation, attend, cached_kv, causal_keep, dense, embed, mask_bias, merge_heads,
    rotate_pairs, sincos_table, split_heads,
)
from ...jx.modeling import FlaxPreTrainedModel
from ...jx.outputs import FlaxBaseModelOutput, FlaxCausalLMOutput, tuple_of
from .configuration import GPTJConfig


class GPTJAttention(Module):
    """q/k/v/out projections without bias; rotary on the first R dims of q and k; the cache."""

    @nn.compact
    def __call__(self, x, mask, sincos, deterministic: bool = True, init_cache: bool = False,
                 output_attentions: bool = False):
        c = self.config
        rotary = c.rotary_dim or c.n_embd // c.n_head
        q, k, v = (split_heads(dense(c.n_embd, c, self.dtype, name, use_bias=False)(x), c.n_head)
                   for name in ("q_proj", "k_proj", "v_proj"))  # (B, T, H, D)
        q, k = (jnp.concatenate([rotate_pairs(t[..., :rotary], sincos), t[..., rotary:]], axis=-1) for t in (q, k))
        length = q.shape[1]
        k, v, start = cached_kv(self, k, v, init_cache)
        if start is None:  # no cache: the T keys are the T queries
            keep = causal_keep(jnp.arange(length), k.shape[1])
        else:  # cache: rows start..start+T-1 see the cache up to their own position
            keep = causal_keep(start + jnp.arange(length), k.shape[1])
        keep = keep & (mask[:, None, None, :] > 0)  # (B, 1, T, S)
        rng = self.make_rng("dropout") if not deterministic and c.attn_pdrop > 0 else None
        out, weights = attend(q, k, v, mask_bias(keep, self.dtype), dtype=self.dtype, dropout_rate=c.attn_pdrop,
                              dropout_rng=rng)
        out = dense(c.n_embd, c, self.dtype, "out_proj", use_bias=False)(merge_heads(out))
        return nn.Dropout(c.resid_pdrop)(out, deterministic=deterministic), weights  # (B, T, C), (B, H, T, S)


class GPTJMLP(Module):
    @nn.compact
    def __call__(self, x, deterministic: bool = True):
        c = self.config
        inner = c.n_inner if c.n_inner is not None else 4 * c.n_embd
        x = dense(c.n_embd, c, self.dtype, "fc_out")(activation(c.activation_function)(dense(inner, c, self.dtype, "fc_in")(x)))
        return nn.Dropout(c.resid_pdrop)(x, deterministic=deterministic)


class GPTJBlock(Module):
    """Parallel residual:  x = x + attn(ln_1(x)) + mlp(ln_1(x))."""

    @nn.compact
    def __call__(self, x, mask, sincos, deterministic: bool = True, init_cache: bool = False,
                 output_attentions: bool = False):
        h = nn.LayerNorm(epsilon=self.config.layer_norm_epsilon, dtype=self.dtype, name="ln_1")(x)
        attn, weights = GPTJAttention(self.config, self.dtype, name="attn")(h, mask, sincos, deterministic, init_cache)
        return attn + GPTJMLP(self.config, self.dtype, name="mlp")(h, deterministic) + x, weights


class GPTJModule(Module):
    """ids (B, T), mask (B, S), positions (B, T) -> FlaxBaseModelOutput; hidden_states end with ln_f's output."""

    @nn.compact
    def __call__(self, input_ids, attention_mask, position_ids, deterministic: bool = True, init_cache: bool = False,
                 output_attentions: bool = False, output_hidden_states: bool = False):
        c = self.config
        x = embed(c.vocab_size, c.n_embd, c, "wte")(input_ids.astype("i4"))  # (B, T, C)
        x = nn.Dropout(c.embd_pdrop)(x, deterministic=deterministic)
        table = sincos_table(c.n_positions, c.rotary_dim or c.n_embd // c.n_head)  # [sin | cos] per position
        sincos = jnp.take(jnp.asarray(table), position_ids, axis=0)  # (B, T, R); -1 wraps, as 4.37's
        x, hidden_states, attentions = Stack(partial(GPTJBlock, c, self.dtype), c.n_layer, name="h")(
            x, attention_mask, sincos, deterministic=deterministic, init_cache=init_cache,
            output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        x = nn.LayerNorm(epsilon=c.layer_norm_epsilon, dtype=self.dtype, name="ln_f")(x)
        if hidden_states is not None:
            hidden_states = hidden_states[:-1] + (x,)
        return FlaxBaseModelOutput(x, hidden_states, attentions)


class GPTJForCausalLMModule(Module):
    @nn.compact
    def __call__(self, input_ids, attention_mask, position_ids, deterministic: bool = True, init_cache: bool = False,
                 output_attentions: bool = False, output_hidden_states: bool = False):
        c = self.config
        transformer = GPTJModule(c, self.dtype, name="transformer")
        out = transformer(input_ids, attention_mask, position_ids, deterministic, init_cache, output_attentions,
                          output_hidden_states)
        if c.tie_word_embeddings:
            table = transformer.variables["params"]["wte"]["embedding"]
            logits = TiedProjection(c.vocab_size, self.dtype, name="lm_head")(out.last_hidden_state, table)
        else:
            logits = dense(c.vocab_size, c, self.dtype, "lm_head")(out.last_hidden_state)
        return FlaxCausalLMOutput(logits, out.hidden_states, out.attentions)  # (B, T, V)


class FlaxGPTJPreTrainedModel(FlaxPreTrainedModel):
    config_class = GPTJConfig
    base_model_prefix = "transformer"

    def init_inputs(self, input_shape):
        ids = jnp.zeros(input_shape, dtype="i4")
        return ids, jnp.ones_like(ids), jnp.broadcast_to(jnp.arange(input_shape[-1]), input_shape)

    def init_cache(self, batch_size: int, max_length: int):
        """An empty "cache" collection for `batch_size` rows of up to `max_length` tokens (zeros, index 0)."""
        ids = jnp.ones((batch_size, max_length), dtype="i4")
        inputs = (ids, jnp.ones_like(ids), jnp.broadcast_to(jnp.arange(max_length), ids.shape))
        shapes = jax.eval_shape(lambda: self.module.init(jax.random.PRNGKey(0), *inputs, init_cache=True))["cache"]
        return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

    def __call__(self, input_ids, attention_mask=None, position_ids=None, params: dict = None, past_key_values: dict = None,
                 dropout_rng=None, train: bool = False, output_attentions=None, output_hidden_states=None,
                 return_dict=None):
        """input_ids (B, T); attention_mask (B, S) 1 keep / 0 padding (S = T, or the cache length);
        position_ids (B, T), required with past_key_values (the "cache" collection of `init_cache` or of
        an earlier call, returned updated as `past_key_values`)."""
        output_attentions, output_hidden_states, return_dict = self.output_options(
            output_attentions, output_hidden_states, return_dict)
        batch, length = input_ids.shape
        if position_ids is None:
            if past_key_values is not None:
                raise ValueError("Make sure to provide `position_ids` when passing `past_key_values`.")
            position_ids = jnp.broadcast_to(jnp.arange(length)[None, :], (batch, length))
        if attention_mask is None:
            attention_mask = jnp.ones((batch, length))
        out = self._apply(params, *(jnp.asarray(t, "i4") for t in (input_ids, attention_mask, position_ids)),
                          dropout_rng=dropout_rng, train=train, past_key_values=past_key_values,
                          output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        return out if return_dict else tuple_of(out)


class FlaxGPTJModel(FlaxGPTJPreTrainedModel):
    """The bare decoder: last_hidden_state (B, T, C), hidden states, attentions (and the cache).

    Example:
        >>> from polyformer import FlaxGPTJModel, GPTJConfig
        >>> model = FlaxGPTJModel(GPTJConfig(n_layer=2, n_embd=64, n_head=4, rotary_dim=8, vocab_size=100))
        >>> model(jnp.array([[1, 2, 3]])).last_hidden_state.shape
        (1, 3, 64)
    """

    module_class = GPTJModule


class FlaxGPTJForCausalLM(FlaxGenerationMixin, FlaxGPTJPreTrainedModel):
    """GPT-J with its LM head: logits (B, T, V); `generate()` (greedy, sampling, beam search).

    Example:
        >>> from polyformer import AutoTokenizer, FlaxGPTJForCausalLM
        >>> model = FlaxGPTJForCausalLM.from_pretrained("EleutherAI/gpt-j-6B")   # PyTorch weights, converted
        >>> model.generate(input_ids, attention_mask=mask, max_new_tokens=20).sequences
    """

    module_class = GPTJForCausalLMModule
