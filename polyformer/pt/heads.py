"""Task-head helpers shared by every PyTorch family: losses and input reshaping.

Each family keeps its own head layers (names are checkpoint keys); the arithmetic after them is here.
"""

from __future__ import annotations

import logging
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100


def cross_entropy_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over every position; labels equal to -100 are ignored.
    logits (..., N), labels (...). Serves masked LM, token classification and multiple choice."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1).to(logits.device),
                           ignore_index=IGNORE_INDEX)


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, config) -> torch.Tensor:
    """Sequence classification / regression loss chosen by `config.problem_type`.

    When problem_type is None it is inferred as the reference does and written back to the config:
    one label -> "regression" (MSE); integer labels -> "single_label_classification" (cross-entropy);
    otherwise "multi_label_classification" (BCE with logits on float multi-hot labels).
    logits (B, num_labels); labels (B,) or (B, num_labels).
    """
    num_labels = config.num_labels
    labels = labels.to(logits.device)
    if config.problem_type is None:
        if num_labels == 1:
            config.problem_type = "regression"
        elif labels.dtype in (torch.long, torch.int):
            config.problem_type = "single_label_classification"
        else:
            config.problem_type = "multi_label_classification"
    if config.problem_type == "regression":
        if num_labels == 1:
            return F.mse_loss(logits.squeeze(), labels.squeeze().to(logits.dtype))
        return F.mse_loss(logits, labels.to(logits.dtype))
    if config.problem_type == "single_label_classification":
        return F.cross_entropy(logits.view(-1, num_labels), labels.view(-1))
    if labels.shape != logits.shape:
        raise ValueError(
            f"multi_label_classification expects labels of shape {tuple(logits.shape)} "
            f"(float multi-hot), got {tuple(labels.shape)}"
        )
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


def span_qa_loss(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    start_positions: Optional[torch.Tensor],
    end_positions: Optional[torch.Tensor],
) -> Optional[torch.Tensor]:
    """Extractive QA loss: the mean of start and end cross-entropy.

    Computed only when both positions are given. Positions are clamped to [0, T] and T (outside the
    sequence) is ignored, so out-of-range targets do not count. logits (B, T); positions (B,) or (B, 1).
    """
    if start_positions is None or end_positions is None:
        return None
    seq_len = start_logits.shape[1]
    losses = []
    for logits, positions in ((start_logits, start_positions), (end_logits, end_positions)):
        if positions.dim() > 1:
            positions = positions.squeeze(-1)
        positions = positions.to(logits.device).clamp(0, seq_len)
        losses.append(F.cross_entropy(logits, positions, ignore_index=seq_len))
    return (losses[0] + losses[1]) / 2


def flatten_choices(*tensors: Optional[torch.Tensor]) -> Tuple[Optional[torch.Tensor], ...]:
    """(B, num_choices, T, ...) -> (B * num_choices, T, ...) for each tensor (None stays None)."""
    return tuple(None if t is None else t.reshape(-1, *t.shape[2:]) for t in tensors)


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Next-token loss: position t predicts labels[t + 1] (labels are shifted here, so labels =
    input_ids works); -100 is ignored; mean over the counted tokens. logits (B, T, V), labels (B, T)."""
    return cross_entropy_loss(logits[:, :-1], labels.to(logits.device)[:, 1:])


def last_token_pool(x: torch.Tensor, input_ids: Optional[torch.Tensor], pad_token_id: Optional[int]) -> torch.Tensor:
    """x (B, T, ...) -> (B, ...) at each row's last token, as transformers 4.37 finds it.

    With a pad id and input_ids: the position before the first pad, `argmax(ids == pad) - 1` modulo T
    (the last real token of right-padded rows; T - 1 for rows without padding or left-padded ones).
    Without (pad_token_id None, or only inputs_embeds given): position T - 1, and a batch of more than
    one row raises as in 4.37, since padding cannot be told apart.
    """
    batch, length = x.shape[:2]
    if pad_token_id is None and batch != 1:
        raise ValueError("Cannot handle batch sizes > 1 if no padding token is defined.")
    if pad_token_id is None or input_ids is None:
        if pad_token_id is not None:
            logger.warning("padding tokens cannot be detected in inputs_embeds: pooling the last position of each row")
        index = torch.full((batch,), length - 1, device=x.device)
    else:
        index = ((input_ids == pad_token_id).int().argmax(-1) - 1) % input_ids.shape[-1]
    return x[torch.arange(batch, device=x.device), index.to(x.device)]
