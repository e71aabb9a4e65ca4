"""Encoder-decoder generation: what `generate()` does around the decoding loop when
`model.config.is_encoder_decoder` (MVP / BART-style models).

- The encoder runs once per call, on the source ids (or `inputs_embeds`) and their attention mask, unless
  `encoder_outputs` is given; its outputs and the source mask are then repeated for beams / returned
  sequences, and every decoder step reads them (the decoder's cache keeps their cross-attention keys and
  values after the first step). After the first decoder forward, each token is one fixed-shape step
  (static_step.py, `Seq2SeqDecoder.decode_step`), as for the decoder-only families.
- The decoder starts from `decoder_start_token_id` (the call's, else the model's generation config, else
  `bos_token_id`), or from the `decoder_input_ids` given, with the start token put in front when no row
  begins with it. `max_length` / `max_new_tokens` count decoder tokens, the start token included, so
  `max_new_tokens=n` gives sequences of n + 1 tokens.

All of it follows transformers 4.37.2 (`_prepare_encoder_decoder_kwargs_for_generation`,
`_prepare_decoder_input_ids_for_generation`, BART's `prepare_inputs_for_generation`).
Notation: B batch, M source tokens, C width, N = B x beams (or x returned sequences).
"""

from __future__ import annotations

import copy
import inspect
from typing import Any, Dict, Optional, Tuple

import torch

from .config import GenerationConfig

# model kwargs that belong to the decoder, not to the encoder (the reference's list)
_NOT_FOR_ENCODER = ("decoder_", "cross_attn", "use_cache")


def prepare(model, inputs: Optional[torch.Tensor], config: GenerationConfig,
            model_kwargs: Dict[str, Any]) -> Tuple[torch.LongTensor, torch.Tensor]:
    """Everything before the decoding loop. Returns (decoder ids (B, T0), the encoder's input: ids (B, M)
    — what the encoder logits processors see — or embeddings (B, M, C)); `model_kwargs` is updated in
    place: `encoder_outputs` set, the source `attention_mask` made when missing, `decoder_input_ids`
    taken out."""
    embeds = model_kwargs.pop("inputs_embeds", None)
    if embeds is not None:
        if inputs is not None or model_kwargs.get("input_ids") is not None:
            raise ValueError("You passed `inputs_embeds` and `input_ids` to `.generate()`. Please pick one.")
        source, source_name = embeds, "inputs_embeds"
    elif inputs is None and model_kwargs.get("input_ids") is None and model_kwargs.get("encoder_outputs") is not None:
        model_kwargs["encoder_outputs"] = as_encoder_output(model_kwargs["encoder_outputs"])
        # placeholder ids (-100, as the reference) of the encoded source's shape; no encoder runs
        shape = model_kwargs["encoder_outputs"].last_hidden_state.shape[:2]
        source, source_name = torch.full(shape, -100, dtype=torch.long, device=model.device), "input_ids"
    else:
        source, source_name = model._generation_input_ids(inputs, config.bos_token_id, model_kwargs), "input_ids"
    _source_mask(source, config, model_kwargs)
    if model_kwargs.get("encoder_outputs") is None:
        model_kwargs["encoder_outputs"] = run_encoder(model, source, source_name, config, model_kwargs)
    else:
        model_kwargs["encoder_outputs"] = as_encoder_output(model_kwargs["encoder_outputs"])
    return _decoder_start(model, source.shape[0], source.device, config, model_kwargs), source


def _source_mask(source: torch.Tensor, config: GenerationConfig, model_kwargs: Dict[str, Any]) -> None:
    """Check the given source mask (B, M); without one, make it from pad tokens (unless pad is an EOS id)
    or all ones — not when `encoder_outputs` are given (the reference then passes no mask)."""
    mask = model_kwargs.get("attention_mask")
    if mask is not None:
        if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(source.shape[:2]):
            shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise ValueError(f"attention_mask must have the shape of the encoder input {tuple(source.shape[:2])}, "
                             f"got {shape}")
        return
    if model_kwargs.get("encoder_outputs") is not None:
        return
    pad, eos = config.pad_token_id, config.eos_token_id
    eos = [eos] if isinstance(eos, int) else (eos or [])
    is_ids = source.dim() == 2 and not source.is_floating_point()
    if is_ids and pad is not None and pad not in eos and bool((source == pad).any()):
        model_kwargs["attention_mask"] = source.ne(pad).long()
    else:
        model_kwargs["attention_mask"] = torch.ones(source.shape[:2], dtype=torch.long, device=source.device)


def run_encoder(model, source: torch.Tensor, source_name: str, config: GenerationConfig,
                model_kwargs: Dict[str, Any]) -> Any:
    """`model.get_encoder()` on the source, with the model kwargs it accepts (mask, head mask, ...),
    returning a ModelOutput with `last_hidden_state` (B, M, C) (and attentions / hidden states when the
    generation config asks for them)."""
    get_encoder = getattr(model, "get_encoder", None)
    if get_encoder is None:
        raise TypeError(f"{type(model).__name__} has `config.is_encoder_decoder` set but no `get_encoder()`: "
                        "encoder-decoder generation needs the encoder")
    encoder = get_encoder()
    kwargs = {k: v for k, v in model_kwargs.items() if not k.startswith(_NOT_FOR_ENCODER)}
    kwargs.update(output_attentions=config.output_attentions, output_hidden_states=config.output_hidden_states)
    parameters = inspect.signature(encoder.forward).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in parameters}
    kwargs[source_name] = source
    kwargs["return_dict"] = True
    return encoder(**kwargs)


def as_encoder_output(encoder_outputs: Any) -> Any:
    """Given `encoder_outputs`: a ModelOutput as is; the tuple of `return_dict=False` as a BaseModelOutput."""
    if isinstance(encoder_outputs, (tuple, list)):
        from ..outputs import BaseModelOutput

        return BaseModelOutput(*encoder_outputs)
    if getattr(encoder_outputs, "last_hidden_state", None) is None:
        raise ValueError("encoder_outputs must hold `last_hidden_state` (batch, source_length, d_model)")
    return encoder_outputs


def decoder_start_token_id(model, config: GenerationConfig) -> int:
    """The call's `decoder_start_token_id`, else the model's generation config's, else `bos_token_id`."""
    for value in (config.decoder_start_token_id, model.generation_config.decoder_start_token_id,
                  config.bos_token_id, model.generation_config.bos_token_id):
        if value is not None:
            return value
    raise ValueError("`decoder_start_token_id` or `bos_token_id` has to be defined for encoder-decoder generation.")


def _decoder_start(model, batch: int, device: torch.device, config: GenerationConfig,
                   model_kwargs: Dict[str, Any]) -> torch.LongTensor:
    """The decoder's first ids (B, T0): the start token, or `decoder_input_ids` (the start token put in
    front, and a 1 in front of `decoder_attention_mask`, when no row begins with it)."""
    given = model_kwargs.pop("decoder_input_ids", None)
    start = decoder_start_token_id(model, config)
    first = torch.full((batch, 1), start, dtype=torch.long, device=device)
    if given is None:
        return first
    if not isinstance(given, torch.Tensor) or given.dim() != 2 or given.is_floating_point() or given.shape[0] != batch:
        shape = tuple(given.shape) if isinstance(given, torch.Tensor) else type(given).__name__
        raise ValueError(f"decoder_input_ids must be integer ids of shape ({batch}, length), got {shape}")
    if given.shape[1] == 0 or bool((given[:, 0] != start).all()):
        given = torch.cat([first, given.to(device)], dim=-1)
        mask = model_kwargs.get("decoder_attention_mask")
        if mask is not None:
            model_kwargs["decoder_attention_mask"] = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=-1)
    return given


def expand(model_kwargs: Dict[str, Any], n: int) -> Dict[str, Any]:
    """Model kwargs for N = B x n rows: each tensor (and each tensor field of `encoder_outputs`, a copy:
    the caller's object is left as it was) repeated n times along the batch, as the reference does."""
    out = {k: v.repeat_interleave(n, dim=0) if isinstance(v, torch.Tensor) else v for k, v in model_kwargs.items()}
    encoder_outputs = out.get("encoder_outputs")
    if encoder_outputs is not None:
        encoder_outputs = copy.copy(encoder_outputs)
        for key, value in list(encoder_outputs.items()):
            if isinstance(value, torch.Tensor):
                encoder_outputs[key] = value.repeat_interleave(n, dim=0)
        out["encoder_outputs"] = encoder_outputs
    return out


def step_inputs(decoder_input_ids: torch.LongTensor, past_key_values: Any = None, attention_mask=None,
                head_mask=None, decoder_head_mask=None, cross_attn_head_mask=None, use_cache: Optional[bool] = None,
                encoder_outputs: Any = None, past_length: int = 0) -> Dict[str, Any]:
    """BART's (and MVP's) inputs of one decoder forward: the decoder tokens the cache has not seen
    (`past_length` of them are cached), the encoder outputs and the source mask. A `decoder_attention_mask`
    is not passed on, as in the reference."""
    if past_key_values is not None:
        cut = past_length if decoder_input_ids.shape[1] > past_length else decoder_input_ids.shape[1] - 1
        decoder_input_ids = decoder_input_ids[:, cut:]
    return {"input_ids": None, "encoder_outputs": encoder_outputs, "past_key_values": past_key_values,
            "decoder_input_ids": decoder_input_ids, "attention_mask": attention_mask, "head_mask": head_mask,
            "decoder_head_mask": decoder_head_mask, "cross_attn_head_mask": cross_attn_head_mask,
            "use_cache": use_cache}


def init_cache(model, batch_size: int, max_length: int) -> Any:
    """The decoder's cache for one generate() call: per layer self-attention buffers (N, H, capacity, D),
    growing in blocks up to max_length (StaticCache), and the cross-attention keys / values, computed at
    the first step."""
    from ..pt.cache import EncoderDecoderCache, StaticCache

    config = model.config
    heads = config.decoder_attention_heads
    self_attention = StaticCache(config.decoder_layers, batch=batch_size, n_kv_heads=heads,
                                 head_dim=config.d_model // heads, max_length=max_length, dtype=model.dtype,
                                 device=model.device)
    return EncoderDecoderCache(self_attention)


def validate_kwargs(model, accepted: set) -> set:
    """The reference also accepts the encoder's arguments and the decoder's as `decoder_<name>`."""
    accepted = set(accepted)
    for part, prefix in (("encoder", ""), ("decoder", "decoder_")):
        module = getattr(model, part, None) or getattr(getattr(model, model.base_model_prefix, None), part, None)
        if module is not None and hasattr(module, "forward"):
            accepted |= {prefix + name for name in inspect.signature(module.forward).parameters}
    return accepted | {"decoder_input_ids"}
