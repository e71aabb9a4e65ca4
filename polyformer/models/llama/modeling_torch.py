"""Llama in PyTorch (Touvron et al., 2023), also Code Llama: pre-norm decoder with RMSNorm, SwiGLU,
rotary positions ("rotate half", rope_theta, optional linear / dynamic scaling) and grouped-query
attention (num_key_value_heads).

Notation: B batch, T new tokens, S = past + T keys, C width, H heads, K key/value heads, D head dim,
L layers, F intermediate size, V vocabulary.
The stack (cache, masks, rotary tables, outputs) is `pt.decoder.DecoderModel`; `LlamaDecoderLayer` is a
plain `(x, step, head_mask, output_attentions) -> (x, weights)` block that other decoders (IDEFICS)
reuse; its attention rotates q and k, updates the cache and attends itself. Module attributes are the reference's checkpoint keys (model.layers.0.self_attn.q_proj, ...).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ...generation.utils import GenerationMixin
from ...outputs import CausalLMOutputWithPast, finish
from ...pt.attention import attend, merge_heads, split_heads
from ...pt.decoder import DecoderModel, DecoderStep
from ...pt.heads import causal_lm_loss
from ...pt.layers import activation
from ...pt.modeling import PreTrainedModel
from ...pt.rotary import Rotary
from .configuration import LlamaConfig



class LlamaRMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight, computed in float32."""

    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * h.to(x.dtype)


class LlamaMLP(nn.Module):
    """SwiGLU: down_proj(act(gate_proj(x)) * up_proj(x)), no biases."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.act_fn = activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class LlamaAttention(nn.Module):
    """q_proj (C -> H*D), k_proj and v_proj (C -> K*D), o_proj; each group of H/K query heads shares
    one key/value head."""

    def __init__(self, config: LlamaConfig, layer_idx: int):
        super().__init__()
        heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
        if config.hidden_size % heads or heads % kv_heads:
            raise ValueError(f"hidden_size={config.hidden_size} must be divisible by num_attention_heads={heads}, "
                             f"and num_attention_heads by num_key_value_heads={kv_heads}")
        self.layer_idx = layer_idx
        self.num_heads, self.num_key_value_heads = heads, kv_heads
        self.head_dim = config.hidden_size // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.attention_dropout = config.attention_dropout
        self.impl = config._attn_implementation
        bias = config.attention_bias
        self.q_proj = nn.Linear(config.hidden_size, heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(config.hidden_size, kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(config.hidden_size, kv_heads * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(heads * self.head_dim, config.hidden_size, bias=bias)

    def forward(self, x, step: DecoderStep, head_mask=None, output_attentions=False):  # x: (B, T, C)
        q = split_heads(self.q_proj(x), self.num_heads)  # (B, H, T, D)
        k = split_heads(self.k_proj(x), self.num_key_value_heads)  # (B, K, T, D)
        v = split_heads(self.v_proj(x), self.num_key_value_heads)
        q, k = step.rotary.rotate(q, step.tables), step.rotary.rotate(k, step.tables)
        if step.cache is not None:
            k, v = step.cache.update(self.layer_idx, k, v)  # (B, K, S, D)
        dropout = self.attention_dropout if self.training else 0.0
        out, weights = attend(q, k, v, step.mask, scale=self.scale, dropout=dropout, head_mask=head_mask,
                              need_weights=output_attentions, impl=self.impl, is_causal=step.is_causal)
        return self.o_proj(merge_heads(out)), weights  # (B, T, C), (B, H, T, S) | None


class LlamaDecoderLayer(nn.Module):
    """Pre-norm block:  x = x + attn(norm(x));  x = x + mlp(norm(x))."""

    def __init__(self, config: LlamaConfig, layer_idx: int):
        super().__init__()
        self.hidden_size = config.hidden_size
        self.self_attn = LlamaAttention(config, layer_idx)
        self.mlp = LlamaMLP(config)
        self.input_layernorm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, x, step: DecoderStep, head_mask=None, output_attentions=False):
        attn, weights = self.self_attn(self.input_layernorm(x), step, head_mask, output_attentions)
        x = x + attn
        return x + self.mlp(self.post_attention_layernorm(x)), weights


class LlamaPreTrainedModel(PreTrainedModel):
    config_class = LlamaConfig
    base_model_prefix = "model"
    _no_split_modules = ["LlamaDecoderLayer"]  # device_map: each block whole on one device
    _skip_keys_device_placement = "past_key_values"

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, LlamaRMSNorm):
            module.weight.fill_(1.0)
        else:
            super()._init_weights(module)


class LlamaStack(DecoderModel):
    """`DecoderModel` over Llama's module names (embed_tokens -> layers -> norm), shared by every decoder
    built that way (Llama, IDEFICS)."""

    blocks_name, norm_name = "layers", "norm"

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def embed(self, input_ids, inputs_embeds, token_type_ids=None) -> torch.Tensor:
        return self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds


class LlamaModel(LlamaPreTrainedModel, LlamaStack):
    """The bare decoder: embed_tokens -> layers -> norm. Returns last_hidden_state (B, T, C),
    past_key_values, hidden states, attentions.

    Example:
        >>> import torch
        >>> from polyformer import LlamaConfig, LlamaModel
        >>> config = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        ...                      num_attention_heads=4, num_key_value_heads=2, vocab_size=100)
        >>> LlamaModel(config)(torch.tensor([[1, 2, 3]])).last_hidden_state.shape
        torch.Size([1, 3, 64])
    """

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self.padding_idx = config.pad_token_id
        self.vocab_size = config.vocab_size
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, self.padding_idx)
        self.layers = nn.ModuleList(LlamaDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.rotary = Rotary(config.hidden_size // config.num_attention_heads, base=config.rope_theta, layout="half",
                             scaling=config.rope_scaling, max_positions=config.max_position_embeddings)
        # 4.37's SDPA path lets query rows that see only padding attend to every key
        self.unmask_unattended = "never" if config._attn_implementation == "eager" else "sdpa"
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        """input_ids (B, T) or inputs_embeds (B, T, C): the new tokens; attention_mask (B, past + T), 1 keep /
        0 padding; position_ids (B|1, T), default past .. past + T - 1; past_key_values: None, the legacy
        tuple (answered with a legacy tuple) or a Cache (updated in place and returned)."""
        options = self.config.output_options(output_attentions, output_hidden_states, return_dict)
        out = self.decode(input_ids=input_ids, past_key_values=past_key_values, attention_mask=attention_mask,
                          position_ids=position_ids, inputs_embeds=inputs_embeds, use_cache=use_cache,
                          output_attentions=options.output_attentions,
                          output_hidden_states=options.output_hidden_states)
        return finish(out, options.return_dict)


class CausalLMAccessors:
    """The embedding and decoder accessors of a causal-LM head over Llama's attribute names (`model`,
    `lm_head`), shared with IDEFICS's head."""

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def get_decoder(self) -> nn.Module:
        return self.model

    def set_decoder(self, decoder: nn.Module) -> None:
        self.model = decoder


class LlamaForCausalLM(CausalLMAccessors, GenerationMixin, LlamaPreTrainedModel):
    """Llama with its LM head (lm_head, no bias). labels (B, T) are shifted inside; -100 is ignored;
    logits in float32.

    Example:
        >>> from polyformer import AutoTokenizer, LlamaForCausalLM
        >>> tokenizer = AutoTokenizer.from_pretrained("codellama/CodeLlama-7b-hf")
        >>> model = LlamaForCausalLM.from_pretrained("codellama/CodeLlama-7b-hf", torch_dtype="auto")
        >>> ids = model.generate(**tokenizer("def fib(n):", return_tensors="pt"), max_new_tokens=32)
    """

    _tied_weights_keys = ["lm_head.weight"]

    def __init__(self, config: LlamaConfig):
        super().__init__(config)
        self.model = LlamaModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        options = self.config.output_options(output_attentions, output_hidden_states, return_dict)
        out = self.model.decode(input_ids=input_ids, past_key_values=past_key_values, attention_mask=attention_mask,
                                position_ids=position_ids, inputs_embeds=inputs_embeds, use_cache=use_cache,
                                output_attentions=options.output_attentions,
                                output_hidden_states=options.output_hidden_states)
        logits = self.lm_head(out.last_hidden_state).float()  # (B, T, V)
        loss = None if labels is None else causal_lm_loss(logits, labels)
        output = CausalLMOutputWithPast(loss, logits, out.past_key_values, out.hidden_states, out.attentions)
        return finish(output, options.return_dict)
