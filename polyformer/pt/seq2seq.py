"""BART-style encoder-decoder machinery in PyTorch, shared by MVP and the BART-like families: post-LayerNorm
encoder and decoder layers, learned positions with BART's offset of 2, the two stacks with their masks and
cache, optional prefix keys and values per layer (MVP's prompts, i.e. prefix-tuning), and the bare model.
The heads' helpers are in seq2seq_heads.py.

Notation: B batch, T decoder tokens of this forward, S = seen + T decoder keys, S_enc encoder length,
C width (d_model), H heads, D head dim, P prefix (prompt) length, L layers, V vocabulary.

Module attributes are the reference's checkpoint keys (encoder.layers.0.self_attn.q_proj, decoder.layers.0.
encoder_attn.k_proj, ...). A family subclasses `Seq2SeqEncoder` / `Seq2SeqDecoder` (setting their
`self_attn_prompt` / `cross_attn_prompt` to add prompts) and `Seq2SeqModel` (naming its stack classes).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from ..outputs import BaseModelOutput, BaseModelOutputWithPastAndCrossAttentions, Seq2SeqModelOutput, finish
from . import inputs
from .attention import attend, merge_heads, split_heads
from .cache import EncoderDecoderCache, open_cache
from .layers import activation
from .masks import causal_mask, padding_mask
from .modeling import PreTrainedModel
from .seq2seq_heads import shift_tokens_right

logger = logging.getLogger(__name__)

Prefix = torch.Tensor  # (2, H, P, D): keys [0] and values [1] put before a layer's own


def with_prefix(mask: Optional[torch.Tensor], prefix_length: int) -> Optional[torch.Tensor]:
    """An additive (..., S) mask -> (..., P + S): prefix keys are never masked."""
    if mask is None or not prefix_length:
        return mask
    return torch.cat([mask.new_zeros(*mask.shape[:-1], prefix_length), mask], dim=-1)


def layer_head_masks(head_mask: Optional[torch.Tensor], *, n_layers: int, n_heads: int, name: str, dtype) -> list:
    """(L, H) 1/0 head mask -> per layer a (1, H, 1, 1) multiplier of the attention weights (or None)."""
    if head_mask is None:
        return [None] * n_layers
    if head_mask.dim() != 2 or head_mask.shape[0] != n_layers or head_mask.shape[1] != n_heads:
        raise ValueError(f"The `{name}` should be specified for {n_layers} layers of {n_heads} heads, shape "
                         f"({n_layers}, {n_heads}), but it has shape {tuple(head_mask.shape)}.")
    return [m.to(dtype).view(1, -1, 1, 1) for m in head_mask]


def check_states(states, mask: Optional[torch.Tensor], *, batch: int, width: int) -> None:
    """The encoder states a decoder reads, (B, S_enc, C), and their mask (B, S_enc) if given."""
    if not isinstance(states, torch.Tensor) or not states.is_floating_point() or states.dim() != 3 \
            or states.shape[0] != batch or states.shape[2] != width:
        shape = tuple(states.shape) if isinstance(states, torch.Tensor) else type(states).__name__
        raise ValueError(f"the encoder states must be a float tensor of shape ({batch}, encoder length, {width}) "
                         f"(batch of the decoder inputs, d_model), got {shape}")
    if mask is not None and (not isinstance(mask, torch.Tensor) or mask.shape != states.shape[:2]):
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"the encoder attention_mask must have the shape {tuple(states.shape[:2])} of the encoder "
                         f"states (batch, encoder length), got {got}")


def as_encoder_output(encoder_outputs) -> BaseModelOutput:
    """`encoder_outputs` given to a forward: a BaseModelOutput, or a tuple (last_hidden_state, [hidden_states,
    [attentions]])."""
    if isinstance(encoder_outputs, BaseModelOutput):
        return encoder_outputs
    if not isinstance(encoder_outputs, (tuple, list)) or not encoder_outputs:
        raise TypeError("encoder_outputs must be a BaseModelOutput or a tuple (last_hidden_state, [hidden_states, "
                        f"[attentions]]), got {type(encoder_outputs).__name__}")
    return BaseModelOutput(*encoder_outputs[:3])


class LearnedPositionalEmbedding(nn.Embedding):
    """Learned positions, looked up at position + 2 (BART's offset): the table has max_positions + 2 rows."""

    offset = 2

    def __init__(self, num_positions: int, dim: int):
        super().__init__(num_positions + self.offset, dim)

    def forward(self, length: int, seen: Union[int, torch.Tensor] = 0) -> torch.Tensor:
        """Positions seen .. seen + length - 1 -> (T, C). `seen` (the decoder tokens cached before these)
        may be a (1,) long tensor: generate()'s one-token step passes its cache index (no host read)."""
        return super().forward(torch.arange(length, device=self.weight.device) + (seen + self.offset))


class Seq2SeqAttention(nn.Module):
    """Multi-head attention with q_proj, k_proj, v_proj, out_proj (with biases).

    Self-attention takes keys and values from x (stored by `cache.update`); cross-attention (`cross=True`)
    from the encoder states (computed once per cache by `cache.cross_kv`). A `prefix` (2, H, P, D) is put
    before the keys and values (it is not cached). `mask` is additive, broadcastable to (B, H, T, P + S)."""

    def __init__(self, width: int, heads: int, *, dropout: float, impl: str, layer_idx: int = 0, cross: bool = False):
        super().__init__()
        if width % heads:
            raise ValueError(f"embed_dim must be divisible by num_heads (got `embed_dim`: {width} and `num_heads`: {heads}).")
        self.num_heads, self.head_dim = heads, width // heads
        self.scale = self.head_dim ** -0.5
        self.dropout, self.impl, self.layer_idx, self.cross = dropout, impl, layer_idx, cross
        self.k_proj, self.v_proj, self.q_proj, self.out_proj = (nn.Linear(width, width) for _ in range(4))

    def forward(self, x, mask, *, states=None, cache=None, prefix: Optional[Prefix] = None, head_mask=None,
                is_causal: bool = False, output_attentions: bool = False):  # x: (B, T, C)
        heads = self.num_heads
        q = split_heads(self.q_proj(x), heads)  # (B, H, T, D)
        if self.cross:
            def project():
                return split_heads(self.k_proj(states), heads), split_heads(self.v_proj(states), heads)  # (B, H, S_enc, D)

            k, v = cache.cross_kv(self.layer_idx, project) if cache is not None else project()
        else:
            k, v = split_heads(self.k_proj(x), heads), split_heads(self.v_proj(x), heads)  # (B, H, T, D)
            if cache is not None:
                k, v = cache.update(self.layer_idx, k, v)  # (B, H, S, D)
        if prefix is not None:
            batch = x.shape[0]
            k = torch.cat([prefix[0].expand(batch, -1, -1, -1), k], dim=2)  # (B, H, P + S, D)
            v = torch.cat([prefix[1].expand(batch, -1, -1, -1), v], dim=2)
        out, weights = attend(q, k, v, mask, scale=self.scale, dropout=self.dropout if self.training else 0.0,
                              head_mask=head_mask, need_weights=output_attentions, impl=self.impl, is_causal=is_causal)
        return self.out_proj(merge_heads(out)), weights  # (B, T, C), (B, H, T, P + S) | None


class _PostNormLayer(nn.Module):
    """What both layers are built with: dropout rates and the feed-forward fc1 -> act -> fc2 with its LayerNorm."""

    def __init__(self, config, ffn_dim: int):
        super().__init__()
        self.embed_dim = config.d_model
        self.dropout, self.activation_dropout = config.dropout, config.activation_dropout
        self.activation_fn = activation(config.activation_function)
        self.fc1 = nn.Linear(config.d_model, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, config.d_model)
        self.final_layer_norm = nn.LayerNorm(config.d_model)


class EncoderLayer(_PostNormLayer):
    """Post-LN:  x = LN(x + attn(x));  x = LN(x + fc2(act(fc1(x))))."""

    def __init__(self, config):
        super().__init__(config, config.encoder_ffn_dim)
        self.self_attn = Seq2SeqAttention(config.d_model, config.encoder_attention_heads,
                                          dropout=config.attention_dropout, impl=config._attn_implementation)
        self.self_attn_layer_norm = nn.LayerNorm(config.d_model)

    def forward(self, x, mask, head_mask=None, prefix=None, output_attentions=False):
        h, weights = self.self_attn(x, mask, prefix=prefix, head_mask=head_mask, output_attentions=output_attentions)
        x = self.self_attn_layer_norm(x + F.dropout(h, self.dropout, self.training))
        h = F.dropout(self.activation_fn(self.fc1(x)), self.activation_dropout, self.training)
        x = self.final_layer_norm(x + F.dropout(self.fc2(h), self.dropout, self.training))
        if x.dtype == torch.float16 and not bool(torch.isfinite(x).all()):  # as the reference: keep fp16 finite
            limit = torch.finfo(x.dtype).max - 1000
            x = x.clamp(-limit, limit)
        return x, weights


@dataclass
class DecoderContext:
    """What every decoder layer of one forward shares."""

    mask: Optional[torch.Tensor]  # additive (B|1, 1, T, P + S) or None
    is_causal: bool
    states: Optional[torch.Tensor]  # encoder states (B, S_enc, C), or None: no cross-attention
    cross_mask: Optional[torch.Tensor]  # additive (B, 1, 1, P + S_enc) or None
    cache: Any  # what self-attention updates: a Cache, generate()'s step's CacheWriter, or None
    # what keeps the cross-attention keys and values (`cross_kv`): an EncoderDecoderCache, the CacheWriter
    # of generate()'s one-token step (which reads the ones the prompt's forward stored), or None
    cross_cache: Any


class DecoderLayer(_PostNormLayer):
    """Post-LN:  x = LN(x + self_attn(x));  x = LN(x + encoder_attn(x, states));  x = LN(x + ffn(x))."""

    def __init__(self, config, layer_idx: int):
        super().__init__(config, config.decoder_ffn_dim)
        width, heads, impl = config.d_model, config.decoder_attention_heads, config._attn_implementation
        self.self_attn = Seq2SeqAttention(width, heads, dropout=config.attention_dropout, impl=impl, layer_idx=layer_idx)
        self.self_attn_layer_norm = nn.LayerNorm(width)
        self.encoder_attn = Seq2SeqAttention(width, heads, dropout=config.attention_dropout, impl=impl,
                                             layer_idx=layer_idx, cross=True)
        self.encoder_attn_layer_norm = nn.LayerNorm(width)

    def forward(self, x, ctx: DecoderContext, head_mask=None, cross_head_mask=None, prefix=None, cross_prefix=None,
                output_attentions=False):
        h, self_weights = self.self_attn(x, ctx.mask, cache=ctx.cache, prefix=prefix, head_mask=head_mask,
                                         is_causal=ctx.is_causal, output_attentions=output_attentions)
        x = self.self_attn_layer_norm(x + F.dropout(h, self.dropout, self.training))
        cross_weights = None
        if ctx.states is not None:
            h, cross_weights = self.encoder_attn(x, ctx.cross_mask, states=ctx.states, cache=ctx.cross_cache,
                                                 prefix=cross_prefix, head_mask=cross_head_mask,
                                                 output_attentions=output_attentions)
            x = self.encoder_attn_layer_norm(x + F.dropout(h, self.dropout, self.training))
        h = F.dropout(self.activation_fn(self.fc1(x)), self.activation_dropout, self.training)
        x = self.final_layer_norm(x + F.dropout(self.fc2(h), self.dropout, self.training))
        return x, (self_weights, cross_weights)


def run_stack(stack: nn.Module, x: torch.Tensor, shared: tuple, per_layer: Sequence[tuple], *, layerdrop: float,
              output_hidden_states: bool, output_attentions: bool):
    """x through `stack.layers`, layer i called as `layer(x, *shared, *per_layer[i], output_attentions)` and
    returning (x, weights). In training a layer is skipped with probability `layerdrop` (its weights None)
    and, with gradient checkpointing, recomputed in backward. Returns (x, hidden states | None, weights)."""
    hidden_states = (x,) if output_hidden_states else None
    weights = []
    recompute = stack.gradient_checkpointing and stack.training and torch.is_grad_enabled()
    for layer, extra in zip(stack.layers, per_layer):
        if layerdrop and stack.training and bool(torch.rand([]) < layerdrop):
            weights.append(None)
        elif recompute:
            x, w = checkpoint(layer, x, *shared, *extra, output_attentions, use_reentrant=False)
            weights.append(w)
        else:
            x, w = layer(x, *shared, *extra, output_attentions)
            weights.append(w)
        if output_hidden_states:
            hidden_states += (x,)
    return x, hidden_states, weights


class _Stack(PreTrainedModel):
    """The embedding part both stacks share: embed_tokens (x embed_scale) + embed_positions ->
    layernorm_embedding -> dropout."""

    ids_names = ("input_ids", "inputs_embeds")

    def __init__(self, config, embed_tokens: Optional[nn.Embedding], layerdrop: float):
        super().__init__(config)
        width = config.d_model
        self.dropout, self.layerdrop = config.dropout, layerdrop
        self.padding_idx = config.pad_token_id
        self.max_positions = config.max_position_embeddings
        self.embed_scale = math.sqrt(width) if config.scale_embedding else 1.0
        self.embed_tokens = embed_tokens if embed_tokens is not None else nn.Embedding(config.vocab_size, width,
                                                                                        self.padding_idx)
        self.embed_positions = LearnedPositionalEmbedding(config.max_position_embeddings, width)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def embed(self, input_ids, inputs_embeds, seen: int = 0) -> torch.Tensor:
        x = self.embed_tokens(input_ids) * self.embed_scale if inputs_embeds is None else inputs_embeds  # (B, T, C)
        x = self.layernorm_embedding(x + self.embed_positions(x.shape[1], seen))
        return F.dropout(x, self.dropout, self.training)


class Seq2SeqEncoder(_Stack):
    """The encoder: embeddings -> `layers` (EncoderLayer). A family with layer-wise prompts (MVP) sets
    `self_attn_prompt` to a module whose call gives per layer the self-attention prefix (2, H, P, D)."""

    def __init__(self, config, embed_tokens: Optional[nn.Embedding] = None):
        super().__init__(config, embed_tokens, config.encoder_layerdrop)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder_layers))
        self.layernorm_embedding = nn.LayerNorm(config.d_model)
        self.self_attn_prompt: Optional[nn.Module] = None

    def forward(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        """input_ids (B, S_enc) or inputs_embeds (B, S_enc, C); attention_mask (B, S_enc), 1 keep / 0 padding;
        head_mask (encoder_layers, encoder_attention_heads). Returns BaseModelOutput."""
        config = self.config
        options = config.output_options(output_attentions, output_hidden_states, return_dict)
        inputs.check_tokens(input_ids, inputs_embeds, attention_mask, vocab_size=config.vocab_size,
                            width=config.d_model, max_positions=self.max_positions)
        x = self.embed(input_ids, inputs_embeds)
        mask = padding_mask(attention_mask, x.dtype)
        n_layers, per_layer = len(self.layers), [(None, None)] * len(self.layers)  # (head mask, prefix) per layer
        prefixes = None if self.self_attn_prompt is None else list(self.self_attn_prompt())
        if prefixes is not None:
            mask = with_prefix(mask, prefixes[0].shape[2])
        if head_mask is not None or prefixes is not None:
            head_masks = layer_head_masks(head_mask, n_layers=n_layers, n_heads=config.encoder_attention_heads,
                                          name="head_mask", dtype=x.dtype)
            per_layer = list(zip(head_masks, prefixes or [None] * n_layers))
        x, hidden_states, weights = run_stack(self, x, (mask,), per_layer, layerdrop=self.layerdrop,
                                              output_hidden_states=options.output_hidden_states,
                                              output_attentions=options.output_attentions)
        out = BaseModelOutput(x, hidden_states, tuple(weights) if options.output_attentions else None)
        return finish(out, options.return_dict)


class Seq2SeqDecoder(_Stack):
    """The decoder: embeddings at positions seen.. -> `layers` (DecoderLayer), with a KV cache and
    cross-attention to the encoder states. A family with layer-wise prompts (MVP) sets `self_attn_prompt`
    and `cross_attn_prompt` to modules whose calls give per layer the self- and cross-attention prefixes
    (2, H, P, D)."""

    ids_names = ("decoder_input_ids", "decoder_inputs_embeds")

    def __init__(self, config, embed_tokens: Optional[nn.Embedding] = None):
        super().__init__(config, embed_tokens, config.decoder_layerdrop)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.decoder_layers))
        self.layernorm_embedding = nn.LayerNorm(config.d_model)
        self.self_attn_prompt: Optional[nn.Module] = None
        self.cross_attn_prompt: Optional[nn.Module] = None

    def forward(self, input_ids=None, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None,
                head_mask=None, cross_attn_head_mask=None, past_key_values=None, inputs_embeds=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        """input_ids (B, T) or inputs_embeds (B, T, C): the new tokens; attention_mask (B, seen + T);
        encoder_hidden_states (B, S_enc, C) and encoder_attention_mask (B, S_enc) for cross-attention;
        head_mask, cross_attn_head_mask (decoder_layers, decoder_attention_heads); past_key_values: None, the
        legacy tuple (answered with one), an EncoderDecoderCache or a Cache (updated in place and returned).
        Returns BaseModelOutputWithPastAndCrossAttentions."""
        config, n_layers = self.config, len(self.layers)
        options = config.output_options(output_attentions, output_hidden_states, return_dict)
        use_cache = config.use_cache if use_cache is None else use_cache
        if use_cache and self.gradient_checkpointing and self.training:
            logger.warning("`use_cache=True` is incompatible with gradient checkpointing. Setting `use_cache=False`...")
            use_cache = False
        cache, legacy = open_cache(past_key_values, use_cache, n_layers, encoder_decoder=True)
        own = cache.self_attention if isinstance(cache, EncoderDecoderCache) else cache  # self-attention's
        seen = 0 if own is None else own.seen
        batch, length = inputs.check_tokens(input_ids, inputs_embeds, attention_mask, vocab_size=config.vocab_size,
                                            width=config.d_model, seen=seen, max_positions=self.max_positions,
                                            names=self.ids_names)
        if encoder_hidden_states is not None:
            check_states(encoder_hidden_states, encoder_attention_mask, batch=batch, width=config.d_model)
        x = self.embed(input_ids, inputs_embeds, seen)

        prefixes = cross_prefixes = None  # per layer (2, H, P, D)
        if self.self_attn_prompt is not None:
            prefixes, cross_prefixes = list(self.self_attn_prompt()), list(self.cross_attn_prompt())
        mask, is_causal = causal_mask(attention_mask, length, seen, x.dtype, device=x.device)
        cross_mask = None if encoder_hidden_states is None else padding_mask(encoder_attention_mask, x.dtype)
        per_layer = [(None, None, None, None)] * n_layers  # head mask, cross head mask, prefix, cross prefix
        if prefixes is not None:
            if is_causal:  # SDPA's is_causal cannot place a prefix: write the mask out
                mask, is_causal = torch.full((length, length), torch.finfo(x.dtype).min, dtype=x.dtype,
                                             device=x.device).triu(1)[None, None], False
            mask, cross_mask = with_prefix(mask, prefixes[0].shape[2]), with_prefix(cross_mask, prefixes[0].shape[2])
        if head_mask is not None or cross_attn_head_mask is not None or prefixes is not None:
            layout = dict(n_layers=n_layers, n_heads=config.decoder_attention_heads, dtype=x.dtype)
            nothing = [None] * n_layers
            per_layer = list(zip(layer_head_masks(head_mask, name="head_mask", **layout),
                                 layer_head_masks(cross_attn_head_mask, name="cross_attn_head_mask", **layout),
                                 prefixes or nothing, cross_prefixes or nothing))
        ctx = DecoderContext(mask=mask, is_causal=is_causal, states=encoder_hidden_states, cross_mask=cross_mask,
                             cache=own, cross_cache=cache if hasattr(cache, "cross_kv") else None)
        x, hidden_states, weights = run_stack(self, x, (ctx,), per_layer,
                                              layerdrop=0.0 if cache is not None else self.layerdrop,
                                              output_hidden_states=options.output_hidden_states,
                                              output_attentions=options.output_attentions)
        self_attentions = cross_attentions = None
        if options.output_attentions:  # (a layer skipped by layerdrop gives None for both)
            self_attentions = tuple(None if w is None else w[0] for w in weights)
            if encoder_hidden_states is not None:
                cross_attentions = tuple(None if w is None else w[1] for w in weights)
        past = None if not use_cache else cache.to_legacy() if legacy else cache
        out = BaseModelOutputWithPastAndCrossAttentions(x, past, hidden_states, self_attentions, cross_attentions)
        return finish(out, options.return_dict)

    def step_context(self, encoder_hidden_states: Optional[torch.Tensor] = None,
                     encoder_attention_mask: Optional[torch.Tensor] = None,
                     head_masks: Sequence[Optional[torch.Tensor]] = ()) -> Optional[Dict[str, Any]]:
        """What every `decode_step` of one generate() call shares, built once after the first decoder
        forward (host reads are fine here): the encoder states (B, S_enc, C) (None: no cross-attention),
        their additive mask with the prefix columns, and the per-layer prefixes (MVP's prompts, computed
        once per call where the forward computes them per token). None where the step would not do what
        the forward does: head masks given (decoder_head_mask, cross_attn_head_mask), or training (the
        forward draws the prompts' dropout anew each time)."""
        if self.training or any(mask is not None for mask in head_masks):
            return None
        prefixes = cross_prefixes = None
        if self.self_attn_prompt is not None:
            prefixes, cross_prefixes = list(self.self_attn_prompt()), list(self.cross_attn_prompt())
        cross_mask = None
        if encoder_hidden_states is not None:
            cross_mask = padding_mask(encoder_attention_mask, self.embed_tokens.weight.dtype)
            if prefixes is not None:
                cross_mask = with_prefix(cross_mask, prefixes[0].shape[2])
        return {"states": encoder_hidden_states, "cross_mask": cross_mask, "prefixes": prefixes,
                "cross_prefixes": cross_prefixes}

    def decode_step(self, *, input_ids: torch.Tensor, cache, mask: torch.Tensor, states: Optional[torch.Tensor],
                    cross_mask: Optional[torch.Tensor], prefixes: Optional[List[Prefix]],
                    cross_prefixes: Optional[List[Prefix]]) -> torch.Tensor:
        """One new token per row, for generate()'s static decoding step (generation/static_step.py): no
        input checks and no host reads, so that it compiles to one graph. input_ids (B, 1); cache: a
        `CacheWriter` (self-attention keys and values written at `cache.position`, which is also the
        token's decoder position; cross-attention keys and values as the first forward stored them);
        mask: additive (B, 1, 1, capacity) over the self-attention buffers; the rest as `step_context`
        gives it. Returns the hidden states (B, 1, C)."""
        x = self.embed(input_ids, None, cache.position)  # (B, 1, C)
        n_layers = len(self.layers)
        if prefixes is not None:
            mask = with_prefix(mask, prefixes[0].shape[2])
        ctx = DecoderContext(mask=mask, is_causal=False, states=states, cross_mask=cross_mask, cache=cache,
                             cross_cache=cache)
        for layer, prefix, cross_prefix in zip(self.layers, prefixes or [None] * n_layers,
                                               cross_prefixes or [None] * n_layers):
            x = layer(x, ctx, prefix=prefix, cross_prefix=cross_prefix)[0]
        return x


class Seq2SeqModel(PreTrainedModel):
    """The bare encoder-decoder. Subclasses create `shared` (the token embeddings, also both stacks'
    `embed_tokens`), `encoder` and `decoder`."""

    def get_input_embeddings(self) -> nn.Embedding:
        return self.shared

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.shared = self.encoder.embed_tokens = self.decoder.embed_tokens = value

    def get_encoder(self) -> nn.Module:
        return self.encoder

    def get_decoder(self) -> nn.Module:
        return self.decoder

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                head_mask=None, decoder_head_mask=None, cross_attn_head_mask=None, encoder_outputs=None,
                past_key_values=None, inputs_embeds=None, decoder_inputs_embeds=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        """Encoder inputs: input_ids (B, S_enc) or inputs_embeds, attention_mask (B, S_enc) (also the
        cross-attention mask), head_mask; or encoder_outputs (a BaseModelOutput or a tuple) to skip the encoder.
        Decoder inputs: decoder_input_ids (B, T) or decoder_inputs_embeds (default: input_ids shifted right
        with decoder_start_token_id), decoder_attention_mask (B, seen + T), decoder_head_mask,
        cross_attn_head_mask, past_key_values (see `Seq2SeqDecoder.forward`). Returns Seq2SeqModelOutput."""
        config = self.config
        if decoder_input_ids is None and decoder_inputs_embeds is None:
            if input_ids is None:
                raise ValueError("If no `decoder_input_ids` or `decoder_inputs_embeds` are passed, `input_ids` cannot "
                                 "be `None`. Please pass either `input_ids` or `decoder_input_ids` or "
                                 "`decoder_inputs_embeds`.")
            decoder_input_ids = shift_tokens_right(input_ids, config.pad_token_id, config.decoder_start_token_id)
        options = config.output_options(output_attentions, output_hidden_states, return_dict)
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids=input_ids, attention_mask=attention_mask, head_mask=head_mask,
                                           inputs_embeds=inputs_embeds, output_attentions=options.output_attentions,
                                           output_hidden_states=options.output_hidden_states, return_dict=True)
        else:
            encoder_outputs = as_encoder_output(encoder_outputs)
        dec = self.decoder(input_ids=decoder_input_ids, attention_mask=decoder_attention_mask,
                           encoder_hidden_states=encoder_outputs.last_hidden_state, encoder_attention_mask=attention_mask,
                           head_mask=decoder_head_mask, cross_attn_head_mask=cross_attn_head_mask,
                           past_key_values=past_key_values, inputs_embeds=decoder_inputs_embeds, use_cache=use_cache,
                           output_attentions=options.output_attentions,
                           output_hidden_states=options.output_hidden_states, return_dict=True)
        out = Seq2SeqModelOutput(dec.last_hidden_state, dec.past_key_values, dec.hidden_states, dec.attentions,
                                 dec.cross_attentions, encoder_outputs.last_hidden_state,
                                 encoder_outputs.hidden_states, encoder_outputs.attentions)
        return finish(out, options.return_dict)
