"""What the PyTorch decoder-only families share: one forward's state (`DecoderStep`), the stack
(`DecoderModel`: embed -> blocks -> final norm, with rotary positions and a KV cache), and the
parallel-residual block, model and LM head that GPT-J and CodeGen have in common.

Notation: B batch, T new tokens, S = seen + T keys, C width, H heads, K key/value heads, D head dim,
L layers, V vocabulary.

Module attributes are the reference's checkpoint keys (transformer.h.0.ln_1, transformer.h.0.mlp.fc_in, ...).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Optional, Tuple

import torch
import torch.nn as nn

from ..outputs import BaseModelOutputWithPast, CausalLMOutputWithPast, finish
from . import inputs
from .attention import attend, merge_heads
from .cache import Cache, open_cache
from .heads import causal_lm_loss
from .layers import activation, run_layers
from .masks import causal_mask
from .modeling import PreTrainedModel
from .rotary import Rotary, RotaryTables

logger = logging.getLogger(__name__)


@dataclass
class DecoderStep:
    """What every layer of one forward shares, built once per forward by `DecoderModel.decode`. A
    self-attention rotates its q and k with `rotary` at `tables`, adds k and v to `cache` (when there is
    one) and attends under `mask` / `is_causal`."""

    rotary: Rotary
    tables: RotaryTables  # cos, sin at this forward's positions
    mask: Optional[torch.Tensor]  # additive (B|1, 1, T, S) or None
    is_causal: bool
    cache: Optional[Cache]  # a Cache, generate()'s step's CacheWriter, or None
    context: dict = field(default_factory=dict)  # what else a family's blocks need (e.g. IDEFICS's image states)


class DecoderModel(PreTrainedModel):
    """A decoder-only stack. Subclasses create the modules, name the block list and the final norm
    (`blocks_name`, `norm_name`: checkpoint keys differ per family), and define `embed`, `rotary` and
    `max_positions` (a hard limit on seen + T, or None).

    Each block is called as `block(x, step, head_mask, output_attentions) -> (x, weights | None)`. A family
    that runs other layers between them (IDEFICS's gated cross-attention) names a list of callables that do
    both, and passes what they need as `decode(..., context={...})`, found in `step.context`.
    """

    blocks_name: str  # the nn.ModuleList of blocks ("h", "layers")
    norm_name: str  # the final norm ("ln_f", "norm")
    max_positions: Optional[int] = None
    rotary: Rotary
    rotary_dtype: Optional[torch.dtype] = None  # dtype of the cos/sin tables (None: the hidden states')
    mask_options: dict = {}  # keyword arguments of `causal_mask` that reproduce the reference's fill values
    # 4.37 lets query rows that see only padding attend to every key where it builds its SDPA mask:
    # "sdpa" when attention runs SDPA (Llama: not eager, no weights asked for), "always" (IDEFICS), "never"
    unmask_unattended: str = "never"

    def embed(self, input_ids, inputs_embeds, token_type_ids) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, *, input_ids=None, past_key_values=None, attention_mask=None, position_ids=None,
               inputs_embeds=None, use_cache=None, output_attentions=False, output_hidden_states=False,
               head_mask=None, token_type_ids=None, context: Optional[dict] = None) -> BaseModelOutputWithPast:
        """The forward of every decoder, returning the output object (arguments: see the families' `forward`;
        output_attentions / output_hidden_states already resolved by `config.output_options`)."""
        config = self.config
        use_cache = config.use_cache if use_cache is None else use_cache
        if use_cache and self.gradient_checkpointing and self.training:
            logger.warning("use_cache=True is incompatible with gradient checkpointing; setting use_cache=False")
            use_cache = False
        blocks = getattr(self, self.blocks_name)
        cache, legacy = open_cache(past_key_values, use_cache, len(blocks))
        seen = 0 if cache is None else cache.seen
        batch, length = inputs.check_tokens(input_ids, inputs_embeds, attention_mask, vocab_size=config.vocab_size,
                                            width=config.hidden_size, seen=seen, max_positions=self.max_positions)
        if token_type_ids is not None:
            inputs.check_ids(token_type_ids, config.vocab_size, name="token_type_ids")
            inputs.check_mask(token_type_ids, (batch, length), name="token_type_ids")
        if position_ids is not None:
            inputs.check_decoder_positions(position_ids, batch=batch, length=length, max_positions=self.max_positions)

        x = self.embed(input_ids, inputs_embeds, token_type_ids)  # (B, T, C)
        if position_ids is None:
            position_ids = torch.arange(seen, seen + length, device=x.device)[None]  # (1, T)
        unmask = self.unmask_unattended == "always" or (self.unmask_unattended == "sdpa" and not output_attentions)
        mask, is_causal = causal_mask(attention_mask, length, seen, x.dtype, device=x.device,
                                      unmask_unattended=unmask, **self.mask_options)
        tables = self.rotary.tables(position_ids.to(x.device), seen + length, self.rotary_dtype or x.dtype)
        step = DecoderStep(rotary=self.rotary, tables=tables, mask=mask, is_causal=is_causal, cache=cache,
                           context=context or {})
        if head_mask is not None:
            head_mask = self.get_head_mask(head_mask, len(blocks))
        x, hidden_states, attentions = run_layers(
            blocks, x, step, head_mask=head_mask, output_hidden_states=output_hidden_states,
            output_attentions=output_attentions, gradient_checkpointing=self.gradient_checkpointing)
        x = getattr(self, self.norm_name)(x)
        if hidden_states is not None:  # the last entry is after the final norm
            hidden_states = hidden_states[:-1] + (x,)
        past = None if not use_cache else cache.to_legacy() if legacy else cache
        return BaseModelOutputWithPast(x, past, hidden_states, attentions)

    def decode_step(self, input_ids: torch.Tensor, token_type_ids: Optional[torch.Tensor], cache,
                    mask: torch.Tensor, tables: RotaryTables, context: Optional[dict] = None) -> torch.Tensor:
        """One new token per row, for generate()'s static decoding step (generation/static_step.py): no
        input checks and no host reads, so that it compiles to one graph. input_ids (B, 1); cache: a
        `CacheWriter` (keys and values written at this position, attention over the whole buffers); mask:
        additive (B, 1, 1, capacity); tables: rotary cos, sin (B, 1, 1, R) at this token's positions;
        context: what a family's blocks read from `step.context` (IDEFICS's images). Returns the hidden
        states (B, 1, C) after the final norm."""
        x = self.embed(input_ids, None, token_type_ids)  # (B, 1, C)
        step = DecoderStep(rotary=self.rotary, tables=tables, mask=mask, is_causal=False, cache=cache,
                           context=context or {})
        for block in getattr(self, self.blocks_name):
            x = block(x, step)[0]
        return getattr(self, self.norm_name)(x)


# --------------------------------------------------------------------------------------------------
# GPT-J and CodeGen: one parallel-residual block; the families differ in how q, k, v are projected.


class ParallelAttention(nn.Module):
    """Self-attention of GPT-J / CodeGen: the family's `project` gives q, k, v (B, H, T, D); rotary on the
    first rotary_dim dims; out_proj; eager scores in float32 (upcast) as the reference computes them."""

    def __init__(self, config, layer_idx: int):
        super().__init__()
        if config.n_embd % config.n_head:
            raise ValueError(f"n_embd={config.n_embd} must be divisible by n_head={config.n_head}")
        self.layer_idx = layer_idx
        self.n_head, self.head_dim = config.n_head, config.n_embd // config.n_head
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.attn_pdrop = config.attn_pdrop
        self.resid_dropout = nn.Dropout(config.resid_pdrop)
        self.impl = config._attn_implementation
        self.out_proj = nn.Linear(config.n_embd, config.n_embd, bias=False)

    def project(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x, step: DecoderStep, head_mask=None, output_attentions=False):  # x: (B, T, C)
        q, k, v = self.project(x)  # (B, H, T, D)
        q, k = step.rotary.rotate(q, step.tables), step.rotary.rotate(k, step.tables)
        if step.cache is not None:
            k, v = step.cache.update(self.layer_idx, k, v)  # (B, H, S, D)
        out, weights = attend(q, k, v, step.mask, scale=self.scale, dropout=self.attn_pdrop if self.training else 0.0,
                              head_mask=head_mask, need_weights=output_attentions, impl=self.impl,
                              is_causal=step.is_causal, upcast=True)
        out = self.out_proj(merge_heads(out))
        return (self.resid_dropout(out) if self.training else out), weights  # (B, T, C), (B, H, T, S) | None


class ParallelMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        inner = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        self.fc_in = nn.Linear(config.n_embd, inner)
        self.fc_out = nn.Linear(inner, config.n_embd)
        self.act = activation(config.activation_function)
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fc_out(self.act(self.fc_in(x)))
        return self.dropout(x) if self.training else x  # (eval: skip the no-op module call, decoding pays it per layer)


class ParallelBlock(nn.Module):
    """One LayerNorm feeds attention and MLP side by side:

        x ── ln_1 ──┬── attn ──┐
        │           └── mlp ───┴── + ── + ──> x'
        └──────────────────────────────┘
    """

    def __init__(self, config, attention: nn.Module):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = attention
        self.mlp = ParallelMLP(config)

    def forward(self, x, step: DecoderStep, head_mask=None, output_attentions=False):
        h = self.ln_1(x)
        attn, weights = self.attn(h, step, head_mask, output_attentions)
        return attn + self.mlp(h) + x, weights


class ParallelDecoder(DecoderModel):
    """GPT-J / CodeGen stack: wte (+ wte(token_type_ids)) -> drop -> h (ParallelBlock) -> ln_f.
    The family sets `attention_class` (and `mask_options`); positions are limited to n_positions."""

    attention_class: type
    blocks_name, norm_name = "h", "ln_f"
    rotary_dtype = torch.float32  # the reference's sin/cos table is float32 whatever the model dtype

    def __init__(self, config):
        super().__init__(config)
        self.embed_dim = config.n_embd
        self.vocab_size = config.vocab_size
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList(ParallelBlock(config, self.attention_class(config, i)) for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        head_dim = config.n_embd // config.n_head
        if config.rotary_dim is not None and not 0 < config.rotary_dim <= head_dim:
            raise ValueError(f"rotary_dim={config.rotary_dim} must lie in (0, head_dim={head_dim}]")
        self.rotary = Rotary(config.rotary_dim or head_dim, layout="interleaved")
        self.max_positions = config.n_positions
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.wte

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.wte = value

    def embed(self, input_ids, inputs_embeds, token_type_ids) -> torch.Tensor:
        x = self.wte(input_ids) if inputs_embeds is None else inputs_embeds
        if token_type_ids is not None:  # token types share the word embeddings
            x = x + self.wte(token_type_ids)
        return self.drop(x)

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, head_mask=None, inputs_embeds=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        """input_ids (B, T) or inputs_embeds (B, T, C): the new tokens; past_key_values: None, the legacy
        tuple or a Cache; attention_mask (B, past + T), 1 keep / 0 padding; token_type_ids (B, T), embedded
        with wte; position_ids (B|1, T), default past .. past + T - 1; head_mask (H,) or (L, H)."""
        options = self.config.output_options(output_attentions, output_hidden_states, return_dict)
        out = self.decode(input_ids=input_ids, past_key_values=past_key_values, attention_mask=attention_mask,
                          position_ids=position_ids, inputs_embeds=inputs_embeds, use_cache=use_cache,
                          output_attentions=options.output_attentions,
                          output_hidden_states=options.output_hidden_states, head_mask=head_mask,
                          token_type_ids=token_type_ids)
        return finish(out, options.return_dict)


class ParallelDecoderForCausalLM(PreTrainedModel):
    """GPT-J / CodeGen LM head: `transformer` (the family's `model_class`) -> lm_head (with bias).
    labels (B, T): shifted inside, -100 ignored; logits in float32."""

    model_class: type
    _tied_weights_keys = ["lm_head.weight"]

    def __init__(self, config):
        super().__init__(config)
        self.transformer = self.model_class(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, head_mask=None, inputs_embeds=None, labels=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        options = self.config.output_options(output_attentions, output_hidden_states, return_dict)
        out = self.transformer.decode(
            input_ids=input_ids, past_key_values=past_key_values, attention_mask=attention_mask,
            position_ids=position_ids, inputs_embeds=inputs_embeds, use_cache=use_cache,
            output_attentions=options.output_attentions, output_hidden_states=options.output_hidden_states,
            head_mask=head_mask, token_type_ids=token_type_ids)
        logits = self.lm_head(out.last_hidden_state).float()  # (B, T, V)
        loss = None if labels is None else causal_lm_loss(logits, labels).to(out.last_hidden_state.dtype)
        output = CausalLMOutputWithPast(loss, logits, out.past_key_values, out.hidden_states, out.attentions)
        return finish(output, options.return_dict)
