"""Input checks shared by the PyTorch models: bad input fails here, with the argument named, instead
of deep inside torch (or, worse, silently).

`check_sequence` is what an encoder's forward checks (DistilBERT, CANINE); `check_choices` what a
multiple-choice head checks before flattening; the single checks below serve the decoders as well."""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from ..value_rules import one_of  # noqa: F401  (the framework-free rule; callers use inputs.one_of)


def check_sequence(input_ids: Optional[torch.Tensor], inputs_embeds: Optional[torch.Tensor],
                   attention_mask: Optional[torch.Tensor], *, vocab_size: int, width: int, max_positions: int,
                   bound: str = "vocab_size", range_error: type = IndexError) -> Tuple[int, int]:
    """Exactly one of input_ids (B, T) in [0, vocab_size) and inputs_embeds (B, T, width); T within
    max_positions; attention_mask, if given, (B, T). Returns (B, T). `bound` and `range_error` as in check_ids."""
    one_of(input_ids, inputs_embeds)
    if input_ids is not None:
        check_ids(input_ids, vocab_size, bound=bound, range_error=range_error)
        shape = tuple(input_ids.shape)
    else:
        check_embeds(inputs_embeds, width)
        shape = tuple(inputs_embeds.shape[:2])
    check_length(shape[1], max_positions)
    check_mask(attention_mask, shape)
    return shape


def check_choices(input_ids: Optional[torch.Tensor], inputs_embeds: Optional[torch.Tensor], *, vocab_size: int,
                  width: int, bound: str = "vocab_size", range_error: type = IndexError) -> int:
    """A multiple-choice head's inputs: input_ids (B, N, T) or inputs_embeds (B, N, T, width). Returns N."""
    one_of(input_ids, inputs_embeds)
    if input_ids is not None:
        check_ids(input_ids, vocab_size, rank=3, bound=bound, range_error=range_error)
        return input_ids.shape[1]
    check_embeds(inputs_embeds, width, rank=4)
    return inputs_embeds.shape[1]


def check_ids(input_ids: torch.Tensor, vocab_size: int, *, name: str = "input_ids", rank: int = 2,
              bound: str = "vocab_size", range_error: type = IndexError) -> None:
    """Token ids: an integer tensor of the given rank with values in [0, vocab_size). Out-of-range values
    raise `range_error`, whose message names `bound`, where the limit comes from."""
    if not isinstance(input_ids, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(input_ids).__name__}")
    if input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer token ids (torch.long), got dtype {input_ids.dtype}")
    if input_ids.dim() != rank:
        raise ValueError(f"{name} must have {rank} dimensions {_shape_words(rank)}, got shape {tuple(input_ids.shape)}")
    if input_ids.numel() and (bool((input_ids < 0).any()) or bool((input_ids >= vocab_size).any())):
        lo, hi = int(input_ids.min()), int(input_ids.max())
        raise range_error(f"{name} must lie in [0, {vocab_size}) ({bound}); got values from {lo} to {hi}")


def check_positions(position_ids: torch.Tensor, max_positions: int, *, length: Optional[int] = None,
                    bound: str = "max_position_embeddings", range_error: type = IndexError) -> None:
    """position_ids (T,) or (B, T) in [0, max_positions), with `length` positions when given."""
    check_ids(position_ids, max_positions, name="position_ids", rank=max(1, min(2, position_ids.dim())), bound=bound,
              range_error=range_error)
    if length is not None and position_ids.shape[-1] != length:
        raise ValueError(f"position_ids must have {length} positions like input_ids, "
                         f"got shape {tuple(position_ids.shape)}")


def check_decoder_positions(position_ids, *, batch: int, length: int, max_positions: Optional[int]) -> None:
    """A decoder's position_ids: integers, (B or 1, T), in [0, max_positions) (None: no limit)."""
    if not isinstance(position_ids, torch.Tensor) or position_ids.is_floating_point() or position_ids.dtype == torch.bool:
        raise TypeError("position_ids must be an integer torch.Tensor")
    if position_ids.dim() != 2 or position_ids.shape[-1] != length or position_ids.shape[0] not in (1, batch):
        raise ValueError(f"position_ids must have shape ({batch} or 1, {length}), got {tuple(position_ids.shape)}")
    low, high = (int(position_ids.min()), int(position_ids.max())) if position_ids.numel() else (0, 0)
    if low < 0 or (max_positions is not None and high >= max_positions):
        raise IndexError(f"position_ids must lie in [0, {max_positions or 'inf'}) (max_position_embeddings); "
                         f"got values from {low} to {high}")


def check_embeds(inputs_embeds: torch.Tensor, width: int, *, rank: int = 3) -> None:
    if not isinstance(inputs_embeds, torch.Tensor) or not inputs_embeds.is_floating_point():
        raise TypeError("inputs_embeds must be a floating-point torch.Tensor")
    if inputs_embeds.dim() != rank or inputs_embeds.shape[-1] != width:
        raise ValueError(
            f"inputs_embeds must be a {rank}-D tensor whose last dimension is the hidden size {width}, "
            f"got shape {tuple(inputs_embeds.shape)}"
        )


def check_length(length: int, max_positions: int) -> None:
    if length > max_positions:
        raise ValueError(
            f"sequence length {length} exceeds max_position_embeddings={max_positions}; "
            "truncate the input (tokenizer(..., truncation=True, max_length=...))"
        )


def check_mask(attention_mask: Optional[torch.Tensor], shape: Tuple[int, ...], name: str = "attention_mask") -> None:
    """A mask, if given, must have exactly the shape of the ids it masks."""
    if attention_mask is None:
        return
    if not isinstance(attention_mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(attention_mask).__name__}")
    if tuple(attention_mask.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} like the inputs, got {tuple(attention_mask.shape)}")


def _shape_words(rank: int) -> str:
    return {2: "(batch_size, sequence_length)", 3: "(batch_size, num_choices, sequence_length)"}.get(rank, f"({rank}-D)")


def check_tokens(input_ids: Optional[torch.Tensor], inputs_embeds: Optional[torch.Tensor],
                 attention_mask: Optional[torch.Tensor] = None, *, vocab_size: int, width: int,
                 seen: Optional[int] = None, max_positions: Optional[int] = None,
                 names: Tuple[str, str] = ("input_ids", "inputs_embeds")) -> Tuple[int, int]:
    """The token inputs of one stack's forward, checked once, at its public boundary: exactly one of ids
    (B, T) in [0, vocab_size) and embeddings (B, T, width); the T new positions after `seen` cached ones
    (None: a stack without a cache) within max_positions (None: no limit); attention_mask, if given,
    (B, seen + T). `names`: how the caller spells the ids and embeddings. Returns (B, T)."""
    ids_name, embeds_name = names
    if input_ids is not None and inputs_embeds is not None:
        raise ValueError(f"You cannot specify both {ids_name} and {embeds_name} at the same time")
    if input_ids is not None:
        check_ids(input_ids, vocab_size, name=ids_name)
        batch, length = input_ids.shape
    elif inputs_embeds is not None:
        check_embeds(inputs_embeds, width)
        batch, length = inputs_embeds.shape[:2]
    else:
        raise ValueError(f"You have to specify either {ids_name} or {embeds_name}")
    past = seen or 0
    if max_positions is not None and past + length > max_positions:
        raise ValueError(f"{past} cached + {length} new tokens exceed the {max_positions} positions of the model "
                         f"(max_position_embeddings={max_positions}); truncate the input (tokenizer(..., "
                         "truncation=True, max_length=...))")
    if attention_mask is not None and (not isinstance(attention_mask, torch.Tensor)
                                       or tuple(attention_mask.shape) != (batch, past + length)):
        got = tuple(attention_mask.shape) if isinstance(attention_mask, torch.Tensor) else type(attention_mask).__name__
        expected = (f"(batch_size, sequence_length) = {(batch, length)}" if seen is None else
                    f"(batch_size, past_length + sequence_length) = ({batch}, {past} + {length})")
        raise ValueError(f"attention_mask must have shape {expected}, got {got}")
    return batch, length
