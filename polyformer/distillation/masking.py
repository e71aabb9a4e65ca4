"""Dynamic masking for masked-language modelling, drawn afresh for every batch (RoBERTa, DistilBERT)."""

from __future__ import annotations

from typing import Iterable

import torch

__all__ = ["IGNORE_INDEX", "mask_tokens"]

IGNORE_INDEX = -100  # label of a position that is not predicted


def mask_tokens(input_ids: torch.Tensor, *, special_ids: Iterable[int], mask_token_id: int, vocab_size: int,
                probability: float = 0.15, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose each non-special token with `probability`; of those, 80% become [MASK], 10% a random token,
    10% stay. Returns (masked input_ids, labels): labels hold the original id at chosen positions and
    IGNORE_INDEX elsewhere. Special tokens (including padding) are never chosen.
    """
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"mlm probability must be in [0, 1], got {probability}")
    special = torch.isin(input_ids, torch.tensor(sorted(set(special_ids)), dtype=input_ids.dtype))
    draw = torch.rand(input_ids.shape, generator=generator)
    chosen = (draw < probability) & ~special
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    how = torch.rand(input_ids.shape, generator=generator)  # < 0.8 mask, < 0.9 random, else keep
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, dtype=input_ids.dtype)
    masked = torch.where(chosen & (how < 0.8), torch.full_like(input_ids, mask_token_id), input_ids)
    masked = torch.where(chosen & (how >= 0.8) & (how < 0.9), random_ids, masked)
    return masked, labels
