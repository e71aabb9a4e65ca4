"""Task-head helpers of the encoder-decoder (BART-style) families: labels shifted into decoder inputs, the
sentence representation at the last eos token, the classification head, and the fields every seq2seq head
output repeats from the bare model's.

Notation: B batch, T length, C width.
"""

from __future__ import annotations

import operator
from typing import Optional

import torch
import torch.nn as nn

from ..outputs import SEQ2SEQ_TAIL


def shift_tokens_right(input_ids: torch.Tensor, pad_token_id: Optional[int], decoder_start_token_id: int) -> torch.Tensor:
    """(B, T) labels -> decoder inputs: the start token, then labels[:, :-1]; -100 becomes the pad id."""
    if pad_token_id is None:
        raise ValueError("self.model.config.pad_token_id has to be defined.")
    shifted = input_ids.new_empty(input_ids.shape)
    shifted[:, 1:] = input_ids[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill_(shifted == -100, pad_token_id)


# What every seq2seq head output repeats after its own fields, read off the bare model's output:
# past_key_values, the decoder's hidden states and attentions, cross_attentions, the encoder's last state,
# hidden states and attentions. `seq2seq_tail(out)` -> that tuple (operator.attrgetter: no Python frame).
seq2seq_tail = operator.attrgetter(*SEQ2SEQ_TAIL)


class ClassificationHead(nn.Module):
    """Sentence classification: dropout -> dense -> tanh -> dropout -> out_proj."""

    def __init__(self, input_dim: int, inner_dim: int, num_classes: int, pooler_dropout: float):
        super().__init__()
        self.dense = nn.Linear(input_dim, inner_dim)
        self.dropout = nn.Dropout(p=pooler_dropout)
        self.out_proj = nn.Linear(inner_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dropout(torch.tanh(self.dense(self.dropout(x)))))


def eos_pool(x: torch.Tensor, input_ids: Optional[torch.Tensor], eos_token_id: int) -> torch.Tensor:
    """x (B, T, C) -> (B, C) at each row's last eos token of input_ids (B, T). As in the reference, every row
    must hold the same number of eos tokens; at least one."""
    if input_ids is None:
        raise ValueError("sequence classification pools the decoder state at the last <eos> of input_ids: pass "
                         "input_ids (the encoder_outputs alone do not say where it is)")
    if tuple(input_ids.shape) != tuple(x.shape[:2]):
        raise ValueError(f"input_ids {tuple(input_ids.shape)} and the decoder states {tuple(x.shape[:2])} must have "
                         "the same (batch, length) to pool at the last <eos>; leave decoder_input_ids unset")
    eos = input_ids.eq(eos_token_id).to(x.device)
    counts = eos.sum(1)
    if bool((counts != counts[0]).any()):
        raise ValueError("All examples must have the same number of <eos> tokens.")
    if not int(counts[0]):
        raise ValueError(f"input_ids hold no <eos> token (id {eos_token_id}): the classification head reads the "
                         "decoder state at each row's last <eos> (the tokenizer adds one)")
    last = x.shape[1] - 1 - eos.flip(1).int().argmax(1)  # (B,)
    return x[torch.arange(x.shape[0], device=x.device), last]
