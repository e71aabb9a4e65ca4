"""Key/value caches for the decoders: what attention keeps of earlier tokens.

Notation: L layers, B batch, K key/value heads, T tokens of this forward, S = seen + T, D head dim.

Every decoder layer calls `cache.update(layer_idx, k, v)` with this forward's keys and values
(B, K, T, D); the cache stores them at positions [seen, seen + T) and returns all keys and values so far
(B, K, S, D) for attention. After the last layer's update, `seen` grows by T.

Models take `past_key_values` as None, as the reference's legacy tuple (per layer `(k, v)`, each
(B, K, S, D); then they return the legacy tuple, as 4.37 does) or as a `Cache`, which they update in
place and return as is. `DynamicCache` grows by concatenation (what the reference does); `StaticCache`
writes into per-layer (B, K, capacity, D) buffers that grow in blocks, for generate().

Encoder-decoder models (MVP, BART) keep an `EncoderDecoderCache`: one of those caches for the decoder's
self-attention, plus per layer the cross-attention keys and values of the encoder states (B, H, S_enc, D),
computed at the first forward and reused by every later one. Its legacy form is 4.37's: per layer
(self_k, self_v, cross_k, cross_v).
"""

from __future__ import annotations

from typing import List, Mapping, Optional, Sequence, Tuple, Union

import torch

Legacy = Tuple[Tuple[torch.Tensor, torch.Tensor], ...]


class Cache:
    """Base of the caches: `seen` tokens stored before the current forward, for `n_layers` layers, per layer
    a key and a value tensor (None until a forward stores one)."""

    def __init__(self, n_layers: int):
        if n_layers < 1:
            raise ValueError(f"a cache needs at least one layer, got n_layers={n_layers}")
        self.n_layers = n_layers
        self.seen = 0
        self.keys: List[Optional[torch.Tensor]] = [None] * n_layers
        self.values: List[Optional[torch.Tensor]] = [None] * n_layers

    def update(self, layer_idx: int, k: torch.Tensor, v: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Store this step's k, v (B, K, T, D) for `layer_idx`; return the layer's keys and values
        (B, K, seen + T, D). The last layer's call advances `seen` by T."""
        raise NotImplementedError

    def reorder(self, beam_idx: torch.LongTensor) -> None:
        """Keep, for each new batch row i, the cached row beam_idx[i] (beam search)."""
        raise NotImplementedError

    def to_legacy(self) -> Legacy:
        """Per layer (k, v), each (B, K, seen, D): the reference's `past_key_values` tuple."""
        raise NotImplementedError

    def __len__(self) -> int:
        """Layers holding tokens, as 4.37's DynamicCache counts them: `if past_key_values:` is False
        for an empty cache."""
        return self.n_layers if self.seen else 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_layers={self.n_layers}, seen={self.seen})"


class DynamicCache(Cache):
    """A cache that grows by concatenation: no size limit, one new tensor per layer and step."""

    @classmethod
    def from_legacy(cls, past_key_values: Optional[Sequence], n_layers: int) -> "DynamicCache":
        """From the legacy tuple (per layer `(k, v)`, or a (2, B, K, S, D) tensor; None: empty)."""
        cache = cls(n_layers)
        if past_key_values is None:
            return cache
        if len(past_key_values) != n_layers:
            raise ValueError(f"past_key_values has {len(past_key_values)} layers, the model has {n_layers}")
        for i, layer in enumerate(past_key_values):
            k, v = layer[0], layer[1]
            if k.dim() != 4 or k.shape != v.shape or k.shape[-2] != past_key_values[0][0].shape[-2]:
                raise ValueError(
                    "past_key_values must hold per layer a key and a value of one shape (batch, heads, past_length, "
                    f"head_dim), all layers with the same past_length; layer {i} has {tuple(k.shape)} / {tuple(v.shape)}"
                )
            cache.keys[i], cache.values[i] = k, v
        cache.seen = past_key_values[0][0].shape[-2]
        return cache

    def update(self, layer_idx, k, v):
        if not 0 <= layer_idx < self.n_layers:
            raise IndexError(f"layer_idx {layer_idx} out of range for a cache of {self.n_layers} layers")
        if layer_idx == self.n_layers - 1:
            self.seen += k.shape[-2]
        if self.keys[layer_idx] is not None:
            k = torch.cat((self.keys[layer_idx], k), dim=-2)  # (B, K, S, D)
            v = torch.cat((self.values[layer_idx], v), dim=-2)
        self.keys[layer_idx], self.values[layer_idx] = k, v
        return k, v

    def reorder(self, beam_idx: torch.LongTensor) -> None:
        for store in (self.keys, self.values):
            for i, t in enumerate(store):
                if t is not None:
                    store[i] = t.index_select(0, beam_idx.to(t.device))

    def to_legacy(self) -> Legacy:
        if None in self.keys:
            raise ValueError("the cache is empty: no forward has stored keys and values in every layer yet")
        return tuple(zip(self.keys, self.values))


BLOCK = 256  # StaticCache capacity grows in multiples of this many positions


def grown_capacity(needed: int, capacity: int) -> int:
    """The capacity to grow to for `needed` positions: at least double the current one, in whole blocks,
    so that a long generation reallocates, and a compiled step recompiles, only log2 times, and calls of
    different lengths share compiled shapes."""
    return -(-max(needed, 2 * capacity) // BLOCK) * BLOCK


def grown(old: torch.Tensor, *, dim: int, capacity: int, used: int, fill=0) -> torch.Tensor:
    """A copy of `old` with `capacity` entries along `dim`: the first `used` copied, the rest `fill`.
    Allocation failure is a MemoryError that says what was asked for (not an allocator message)."""
    shape = list(old.shape)
    shape[dim] = capacity
    try:
        new = old.new_full(shape, fill)
    except RuntimeError as error:  # torch's CPU allocator raises RuntimeError; CUDA's OutOfMemoryError is one too
        gib = old.element_size() * torch.Size(shape).numel() / 2 ** 30
        raise MemoryError(f"generate(): the buffers for {capacity} positions ({tuple(shape)}, {old.dtype}, "
                          f"{gib:.1f} GiB) do not fit in memory; ask for fewer new tokens (max_new_tokens / "
                          f"max_length) or a smaller batch") from error
    new.narrow(dim, 0, used).copy_(old.narrow(dim, 0, used))
    return new


class StaticCache(Cache):
    """Per layer a key and a value buffer (B, K, capacity, D), written in place, for generate().

    The memory follows the tokens stored, not `max_length`: the buffers start at one block (`BLOCK`
    positions) and grow, copied into buffers of at least twice the capacity in whole blocks, when a
    forward needs more; storing more than `max_length` tokens raises. Between growths no tensor is
    allocated per token and the shapes stay fixed (what a compiled decoding step needs). `update` returns
    views [:, :, :seen + T]; a compiled step instead writes with `at(position)` and reads the whole
    buffers under a mask."""

    def __init__(self, n_layers: int, batch: int, n_kv_heads: int, head_dim: int, max_length: int,
                 dtype: torch.dtype = torch.float32, device=None):
        super().__init__(n_layers)
        if max_length < 1:
            raise ValueError(f"max_length must be at least 1, got {max_length}")
        self.max_length = max_length
        shape = (batch, n_kv_heads, BLOCK, head_dim)
        self.keys = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layers)]
        self.values = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(n_layers)]

    @property
    def capacity(self) -> int:
        """Positions the buffers hold now."""
        return self.keys[0].shape[2]

    def reserve(self, needed: int) -> bool:
        """Make room for `needed` positions (growing the buffers if they are smaller); whether they grew."""
        if needed > self.max_length:
            raise ValueError(f"StaticCache holds {self.max_length} positions (max_length); {self.seen} are used and "
                             f"{needed - self.seen} more were asked for. Allocate a larger max_length.")
        if needed <= self.capacity:
            return False
        capacity = grown_capacity(needed, self.capacity)
        for store in (self.keys, self.values):
            for i, old in enumerate(store):
                store[i] = grown(old, dim=2, capacity=capacity, used=self.seen)
        return True

    def update(self, layer_idx, k, v):
        if not 0 <= layer_idx < self.n_layers:
            raise IndexError(f"layer_idx {layer_idx} out of range for a cache of {self.n_layers} layers")
        start, end = self.seen, self.seen + k.shape[-2]
        shape = self.keys[0].shape
        if k.shape[0] != shape[0] or k.shape[1] != shape[1] or k.shape[-1] != shape[-1]:
            raise ValueError(f"keys of shape {tuple(k.shape)} do not fit a StaticCache of "
                             f"(batch, heads, head_dim) = {(shape[0], shape[1], shape[3])}")
        self.reserve(end)
        self.keys[layer_idx][:, :, start:end] = k
        self.values[layer_idx][:, :, start:end] = v
        if layer_idx == self.n_layers - 1:
            self.seen = end
        return self.keys[layer_idx][:, :, :end], self.values[layer_idx][:, :, :end]  # (B, K, S, D) views

    def at(self, position: torch.Tensor) -> "CacheWriter":
        """What a one-token decoding step updates: `update` writes at `position` (a (1,) long tensor, on
        the device: no host read) and returns the whole buffers. The caller advances `seen`."""
        return CacheWriter(self.keys, self.values, position)

    def reorder(self, beam_idx: torch.LongTensor) -> None:
        beam_idx = beam_idx.to(self.keys[0].device)
        for buffer in self.keys + self.values:
            used = buffer[:, :, : self.seen]
            used.copy_(used.index_select(0, beam_idx))

    def to_legacy(self) -> Legacy:
        return tuple((k[:, :, : self.seen], v[:, :, : self.seen]) for k, v in zip(self.keys, self.values))

    def reset(self) -> None:
        """Forget every stored token (the buffers are kept)."""
        self.seen = 0


class CacheWriter:
    """A StaticCache seen by one compiled decoding step: per layer the key and value buffers (B, K,
    capacity, D), written at `position` (1,) and read whole. Tensors only, and each buffer its own
    tensor, so that torch.compile writes the new entries in place (a view of one big buffer would be
    copied whole).

    `cross`: the cross-attention keys and values the prompt's forward stored (an EncoderDecoderCache's
    per-layer list, IDEFICS's per image-layer dict), answered by `cross_kv` as the caches answer it."""

    def __init__(self, keys: List[torch.Tensor], values: List[torch.Tensor], position: torch.Tensor,
                 cross: Optional[Union[Sequence, Mapping]] = None):
        self.keys, self.values, self.position, self.cross = keys, values, position, cross

    def cross_kv(self, layer_idx: int, compute) -> Tuple[torch.Tensor, torch.Tensor]:
        """The layer's stored cross-attention (k, v); `compute()`'s (not stored: a step adds no entry)
        where there is none."""
        stored = None if self.cross is None else self.cross[layer_idx]
        return compute() if stored is None else stored

    def update(self, layer_idx: int, k: torch.Tensor, v: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """k, v (B, K, 1, D) -> the layer's whole buffers (B, K, capacity, D), with k, v written in."""
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        keys[:, :, self.position] = k
        values[:, :, self.position] = v
        return keys, values


class EncoderDecoderCache:
    """The cache of an encoder-decoder decoder: `self_attention` (a DynamicCache or StaticCache, which
    grows by T per forward) and `cross`, per layer the (k, v) of the encoder states, each (B, H, S_enc, D),
    or None until that layer's first cross-attention.

    Decoder layers call `update(layer_idx, k, v)` for self-attention as with any Cache, and
    `cross_kv(layer_idx, compute)`, which runs `compute()` (projecting the encoder states) only the first
    time and then returns the stored pair. A decoder run without encoder states leaves `cross` None:
    its legacy form then holds (self_k, self_v) per layer.
    """

    def __init__(self, self_attention: Cache, cross: Optional[Sequence] = None):
        if not isinstance(self_attention, Cache):
            raise TypeError(f"self_attention must be a Cache (DynamicCache, StaticCache), got {type(self_attention).__name__}")
        self.self_attention = self_attention
        self.cross: List[Optional[Tuple[torch.Tensor, torch.Tensor]]] = (
            [None] * self_attention.n_layers if cross is None else [None if kv is None else tuple(kv) for kv in cross])
        if len(self.cross) != self_attention.n_layers:
            raise ValueError(f"cross has {len(self.cross)} layers, the self-attention cache {self_attention.n_layers}")

    @property
    def n_layers(self) -> int:
        return self.self_attention.n_layers

    @property
    def seen(self) -> int:
        """Decoder tokens stored (the cross entries do not count)."""
        return self.self_attention.seen

    def update(self, layer_idx: int, k: torch.Tensor, v: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Self-attention: see `Cache.update`."""
        return self.self_attention.update(layer_idx, k, v)

    def cross_kv(self, layer_idx: int, compute) -> Tuple[torch.Tensor, torch.Tensor]:
        """The layer's cross-attention (k, v), (B, H, S_enc, D): stored ones, else `compute()`'s, stored."""
        if self.cross[layer_idx] is None:
            self.cross[layer_idx] = tuple(compute())
        return self.cross[layer_idx]

    def reorder(self, beam_idx: torch.LongTensor) -> None:
        """Keep, for each new batch row i, the cached row beam_idx[i], in both parts (beam search)."""
        self.self_attention.reorder(beam_idx)
        self.cross = [None if kv is None else tuple(t.index_select(0, beam_idx.to(t.device)) for t in kv)
                      for kv in self.cross]

    def to_legacy(self) -> Tuple[Tuple[torch.Tensor, ...], ...]:
        """Per layer (self_k, self_v, cross_k, cross_v), as 4.37's BART / MVP return it ((self_k, self_v)
        for layers without cross entries)."""
        layers = []
        for own, kv in zip(self.self_attention.to_legacy(), self.cross):
            layers.append(tuple(own) if kv is None else tuple(own) + tuple(kv))
        return tuple(layers)

    @classmethod
    def from_legacy(cls, past_key_values: Optional[Sequence], n_layers: int) -> "EncoderDecoderCache":
        """From the legacy tuple (per layer 4 tensors, or 2 for a decoder run alone); None: empty, dynamic."""
        if past_key_values is None:
            return cls(DynamicCache(n_layers))
        if len(past_key_values) != n_layers:
            raise ValueError(f"past_key_values has {len(past_key_values)} layers, the model has {n_layers}")
        sizes = {len(layer) for layer in past_key_values}
        if not sizes <= {2, 4} or len(sizes) != 1:
            raise ValueError("past_key_values must hold per layer (self_k, self_v, cross_k, cross_v), or (self_k, "
                             f"self_v) in every layer; got layers of {sorted(sizes)} tensors")
        own = DynamicCache.from_legacy([tuple(layer[:2]) for layer in past_key_values], n_layers)
        return cls(own, [tuple(layer[2:4]) if len(layer) == 4 else None for layer in past_key_values])

    def __len__(self) -> int:
        return len(self.self_attention)

    def __repr__(self) -> str:
        crossed = sum(kv is not None for kv in self.cross)
        return f"EncoderDecoderCache({self.self_attention!r}, cross layers filled={crossed})"


def open_cache(past_key_values, use_cache: bool, n_layers: int, encoder_decoder: bool = False):
    """What a model's forward works with: (cache or None, whether to answer with the legacy tuple).

    A `Cache` (or, for encoder-decoder models, an `EncoderDecoderCache`) is used as is; a legacy tuple
    becomes a DynamicCache (`encoder_decoder`: an EncoderDecoderCache over one); None becomes an empty one
    when `use_cache`, else no cache at all. The forward answers `past_key_values` with None unless
    use_cache, the legacy tuple (`cache.to_legacy()`) when it came in as one or as None, else the cache.
    """
    if isinstance(past_key_values, (Cache, EncoderDecoderCache)):
        if past_key_values.n_layers != n_layers:
            raise ValueError(f"the cache has {past_key_values.n_layers} layers, the model has {n_layers}")
        return past_key_values, False
    if past_key_values is None:
        if not use_cache:
            return None, True
        return (EncoderDecoderCache(DynamicCache(n_layers)) if encoder_decoder else DynamicCache(n_layers)), True
    if not isinstance(past_key_values, (tuple, list)):
        raise TypeError("past_key_values must be a Cache or a tuple of (key, value) per layer, "
                        f"got {type(past_key_values).__name__}")
    return (EncoderDecoderCache if encoder_decoder else DynamicCache).from_legacy(past_key_values, n_layers), True
