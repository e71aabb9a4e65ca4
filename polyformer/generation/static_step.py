"""generate()'s one-token decoding step, gpt-fast's decode contract, for every family that generates:
CodeGen, GPT-J, Llama / Code Llama and IDEFICS (decoder-only), MVP (encoder-decoder).

The prompt runs once through the model's forward, filling a `StaticCache` (an encoder-decoder's is the
self-attention part of its `EncoderDecoderCache`) and storing any cross-attention keys and values (the
encoder states', IDEFICS's images'). Every later token is one call of `StaticStep`, which runs the stack on
(B, 1) tokens with fixed shapes: keys and values are written into the cache's buffers at a position
tensor, attention reads the whole buffers (B, K, capacity, D) under a mask, cross-attention reads the
stored keys and values, and rotary cos / sin come from a table made once per call (per cache capacity).
No input check and no host read happens inside a step, so the step compiles to one graph:
`generate(..., compile=True)` (or a generation config with `cache_implementation="static"`, transformers'
spelling) runs it through `torch.compile`, once per (model, batch, capacity, dtype) and reused by later
calls. The cache grows in blocks (pt/cache.py), so a long generation recompiles only when it doubles.

A family takes part through its stack's one-token step (`DecoderModel.decode_step`,
`Seq2SeqDecoder.decode_step`). The plain decoder-only families need nothing more; the others define, on
the generating model, the two methods of `StepFamily`.

Notation: B rows, C width, R rotated dims, V vocabulary.
"""

from __future__ import annotations

import functools
import logging
import weakref
from typing import Any, Callable, Dict, List, Optional, Protocol, Tuple

import torch

from ..pt.cache import CacheWriter, StaticCache

logger = logging.getLogger(__name__)

_COMPILE_CACHE_LIMIT = 64  # compiled graphs kept for the step (one per model, batch, capacity and dtype)


class StepFamily(Protocol):
    """What a generating model defines when the plain decoder-only step (`base.decode_step`, then
    `lm_head(...).float()`) does not fit it (IDEFICS, MVP)."""

    def static_step_context(self, model_kwargs: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """What every step of one generate() call shares, built once, after the prompt's forward (so host
        reads and input checks are fine here): keyword arguments of `static_step_logits`. model_kwargs:
        the call's other model inputs (images, encoder outputs, source mask, ...). None: this call keeps
        the forward-per-token path (inputs the step does not take, such as head masks)."""

    def static_step_logits(self, *, input_ids: torch.Tensor, token_type_ids: Optional[torch.Tensor],
                           cache: CacheWriter, mask: torch.Tensor, tables: Optional[Tuple[torch.Tensor, torch.Tensor]],
                           **context: Any) -> torch.Tensor:
        """The stack's one-token step and the head: input_ids (B, 1), cache the step's writer (its
        `position` (1,) is the token's cache index), mask additive (B, 1, 1, capacity), tables rotary cos,
        sin (B, 1, 1, R) or None (a stack without rotary positions). Returns the logits (B, 1, V) as the
        model's forward gives them. No host reads."""


def supports_static_step(model) -> bool:
    """Whether `model` decodes with `StaticStep`: a family that defines `static_step_logits`, or a
    decoder-only stack (pt/decoder.py) whose blocks are its registered modules, under an `lm_head`."""
    from ..pt.decoder import DecoderModel

    if callable(getattr(model, "static_step_logits", None)):
        return True
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    return (isinstance(base, DecoderModel) and isinstance(getattr(base, base.blocks_name), torch.nn.ModuleList)
            and isinstance(getattr(model, "lm_head", None), torch.nn.Module))  # (plain, quantized or packed)


def static_buffers(cache) -> Optional[StaticCache]:
    """The StaticCache a step writes into: the cache itself (IDEFICS's `IdeficsGenerationCache` is one),
    or an `EncoderDecoderCache`'s self-attention part; None for any other cache."""
    own = getattr(cache, "self_attention", cache)
    return own if isinstance(own, StaticCache) else None


def static_step(model, cache, prompt_mask: Optional[torch.Tensor], model_kwargs: Dict[str, Any], *,
                compile: bool = False) -> Optional["StaticStep"]:
    """The `StaticStep` of one generate() call, made once the prompt's forward has filled `cache`; None
    where the call keeps the forward-per-token path: a model without the step, a cache without static
    buffers, or a family whose `static_step_context` declines these inputs."""
    if cache is None or not supports_static_step(model) or static_buffers(cache) is None:
        return None
    make_context = getattr(model, "static_step_context", None)
    context = {} if make_context is None else make_context(model_kwargs)
    if context is None:
        return None
    return StaticStep(model, cache, prompt_mask, context, compile=compile)


def _step(model, *, ids: torch.Tensor, token_types: Optional[torch.Tensor], positions: torch.Tensor,
          position: torch.Tensor, keys: List[torch.Tensor], values: List[torch.Tensor], cross: Any,
          key_mask: torch.Tensor, tables: Optional[Tuple[torch.Tensor, torch.Tensor]],
          context: Dict[str, Any]) -> torch.Tensor:
    """ids (B, 1) at rotary positions (B, 1) and cache index `position` (1,); keys / values: per layer
    (B, K, capacity, D); cross: the cache's stored cross-attention keys and values (or None); key_mask
    (B, capacity) bool, False at the prompt's padding; tables: cos / sin (positions, R), or None for a stack
    without rotary positions; context: the family's per-call keyword arguments (`StepFamily`).
    Returns the logits (B, 1, V): float32 for the plain decoder-only families."""
    capacity = keys[0].shape[2]
    seen = torch.arange(capacity, device=position.device) <= position  # (capacity,): written, this one included
    keep = key_mask & seen  # (B, capacity)
    dtype = model.get_input_embeddings().weight.dtype
    mask = torch.zeros(keep.shape, dtype=dtype, device=position.device).masked_fill(~keep, torch.finfo(dtype).min)
    if tables is not None:
        tables = (tables[0][positions][:, None], tables[1][positions][:, None])  # (B, 1, 1, R)
    step = dict(input_ids=ids, token_type_ids=token_types, cache=CacheWriter(keys, values, position, cross),
                mask=mask[:, None, None, :], tables=tables)
    family_step = getattr(model, "static_step_logits", None)
    if family_step is not None:
        return family_step(**step, **context)
    base = getattr(model, model.base_model_prefix)
    return model.lm_head(base.decode_step(**step)).float()  # (B, 1, V)


class StaticStep:
    """The decoding step of one generate() call: `step(ids, positions, token_types)` after the prompt has
    filled `cache` (made by `static_step`). cache: the call's cache (a StaticCache, or an object holding one
    as `self_attention`, with any stored cross-attention entries as `cross`); prompt_mask: the prompt's
    attention mask (B, P), 1 for real tokens, or None (every key visible); context: the family's per-call
    keyword arguments (`StepFamily.static_step_context`). compile: run the step through `torch.compile`
    (falls back to the eager step, with one warning, where it cannot compile, e.g. without a C++ compiler)."""

    def __init__(self, model, cache, prompt_mask: Optional[torch.Tensor], context: Dict[str, Any], *,
                 compile: bool = False):
        self.model, self.owner, self.prompt_mask, self.context = model, cache, prompt_mask, context
        self.cache = static_buffers(cache)
        self.base = getattr(model, model.base_model_prefix)
        self.rotary = getattr(self.base, "rotary", None)  # decoder-only stacks; MVP's positions are learned
        self.compile = compile and _can_compile(model)
        self._tables: Optional[Tuple[torch.Tensor, torch.Tensor]] = None
        self._tables_key: Optional[Tuple[int, int]] = None
        self._indices: Optional[torch.Tensor] = None  # arange(capacity): cache positions as (1,) views
        self._key_mask: Optional[torch.Tensor] = None  # (B, capacity): False at the prompt's padding

    def __call__(self, ids: torch.Tensor, positions: Optional[torch.Tensor],
                 token_types: Optional[torch.Tensor]) -> torch.Tensor:
        """ids (B, 1): the newest token of each row; positions (B, 1) its rotary positions (None: the cache
        index). Returns logits (B, 1, V)."""
        cache = self.cache
        index = cache.seen
        cache.reserve(index + 1)
        if self._indices is None or self._indices.shape[0] != cache.capacity:  # the first step, or the cache grew
            self._indices = torch.arange(cache.capacity, device=cache.keys[0].device)
            self._key_mask = torch.ones((ids.shape[0], cache.capacity), dtype=torch.bool, device=cache.keys[0].device)
            if self.prompt_mask is not None:
                self._key_mask[:, : self.prompt_mask.shape[1]] = self.prompt_mask != 0
        position = self._indices[index:index + 1]  # (1,)
        if positions is None:
            positions = position.expand(ids.shape[0], 1)
        # views into the caller's (B, max_length) buffers: copied to fixed strides, which the compiled step
        # is specialised on (else every max_length would compile again)
        ids, positions, token_types = (None if t is None else t.clone(memory_format=torch.contiguous_format)
                                       for t in (ids, positions, token_types))
        logits = self._run(ids=ids, token_types=token_types, positions=positions, position=position,
                           keys=cache.keys, values=cache.values, cross=getattr(self.owner, "cross", None),
                           key_mask=self._key_mask, tables=self._rotary_tables(index + 1), context=self.context)
        cache.seen += 1
        return logits

    def _rotary_tables(self, key_length: int) -> Optional[Tuple[torch.Tensor, torch.Tensor]]:
        """cos, sin (capacity, R) for every position value, made again only when the capacity changes (or,
        for Llama's "dynamic" rope scaling past max_position_embeddings, when the key length does); None
        for a stack without rotary positions."""
        rotary, capacity = self.rotary, self.cache.capacity
        if rotary is None:
            return None
        dynamic = rotary.kind == "dynamic" and key_length > rotary.max_positions
        key = (capacity, key_length if dynamic else 0)
        if key != self._tables_key:
            dtype = self.base.rotary_dtype or self.base.get_input_embeddings().weight.dtype
            cos, sin = rotary.tables(self._indices[None], key_length, dtype)  # (1, 1, capacity, R)
            self._tables, self._tables_key = (cos[0, 0], sin[0, 0]), key
        return self._tables

    def _run(self, **inputs) -> torch.Tensor:
        if not self.compile:
            return _step(self.model, **inputs)
        try:
            with torch._dynamo.config.patch(cache_size_limit=_COMPILE_CACHE_LIMIT):
                return _compiled()(self.model, **inputs)
        except Exception as error:  # noqa: BLE001 - inductor raises many types; the eager step is the fallback
            if not _warn_once(error):
                raise
            self.compile = False
            _NOT_COMPILABLE.add(self.model)  # later calls do not try again
            return _step(self.model, **inputs)


_COMPILE_FAILED = False


@functools.cache
def _compiled() -> Callable:
    """The compiled step, made at the first compile=True call (torch.compile's guards tell models apart)."""
    return torch.compile(_step, dynamic=False, options=_vector_width_option() or None)


_VECTOR_BITS = {"AVX512": 512, "AVX2": 256, "DEFAULT": 0}  # torch's CPU capability -> inductor's cpp.simdlen


def _vector_width_option() -> dict:
    """Inductor's vector width, stated: the width ATen's kernels run at (`ATEN_CPU_CAPABILITY` may lower it).

    Inductor reads that variable too, but leaves it out of its on-disk cache key (torch 2.13): a step compiled
    under AVX-512 and reloaded under `ATEN_CPU_CAPABILITY=avx2` runs 16-lane loops on 8-lane vectors and
    decodes garbage. A stated `cpp.simdlen` is part of the key and picks the same kernels."""
    bits = _VECTOR_BITS.get(torch.backends.cpu.get_cpu_capability())
    return {} if bits is None else {"cpp.simdlen": bits}


_NOT_COMPILABLE: "weakref.WeakSet" = weakref.WeakSet()  # models whose step failed to compile


def _can_compile(model) -> bool:
    """False for a model whose step failed to compile before, or that is dispatched over devices."""
    from ..pt.device_map import is_dispatched

    if model in _NOT_COMPILABLE:
        return False
    if is_dispatched(model):
        logger.info("generate(compile=True): the model is dispatched over devices or disk (device_map), whose hooks "
                    "move weights and inputs at each call; decoding with the eager step")
        return False
    return True


def _warn_once(error: Exception) -> bool:
    """Whether `error` is torch.compile failing to build the step (then warn, once per process)."""
    global _COMPILE_FAILED
    name = type(error).__module__ + "." + type(error).__name__
    if not any(part in name for part in ("torch._dynamo", "torch._inductor", "BackendCompilerFailed", "CppCompile")):
        return False
    if not _COMPILE_FAILED:
        logger.warning("generate(compile=True): torch.compile could not build the decoding step (%s: %s); decoding "
                       "eagerly instead", type(error).__name__, str(error).splitlines()[0] if str(error) else "")
        _COMPILE_FAILED = True
    return True
