"""The DistilBERT paper's loss terms (Sanh et al., 2019, and transformers 4.37's research script
examples/research_projects/distillation/distiller.py), written for selected rows.

Every function takes rows already selected (masked positions for the two vocabulary losses, non-pad
tokens for the two hidden-state losses), shape (N, V) or (N, C), and returns the *sum* over rows with
`reduction="sum"` or the mean over rows with `reduction="mean"` (the research script's reductions:
KLDivLoss(batchmean), CrossEntropyLoss(mean), CosineEmbeddingLoss(mean)). The trainer sums and divides
by the global row count, so that any split of a batch over processes and accumulation steps gives the
same loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["cosine_loss", "distillation_loss", "hidden_mse_loss", "mlm_loss"]

REDUCTIONS = ("mean", "sum")


def _reduce(per_row: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    return per_row.sum() if reduction == "sum" else per_row.sum() / max(per_row.numel(), 1)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 2.0,
                      reduction: str = "mean") -> torch.Tensor:
    """T² · KL(softmax(t/T) ‖ softmax(s/T)) per row, in fp32: the soft-target cross-entropy minus the
    teacher's entropy (a constant), so its gradient is the paper's L_ce's. (N, V), (N, V) -> scalar."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ: the vocabularies must match")
    log_p = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_q = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    per_row = (log_q.exp() * (log_q - log_p)).sum(-1)  # (N,)
    return _reduce(per_row, reduction) * temperature ** 2


def mlm_loss(student_logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of the student's logits (N, V) against the original tokens (N,)."""
    return _reduce(F.cross_entropy(student_logits.float(), labels, reduction="none"), reduction)


def cosine_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """1 - cos(student, teacher) per row (CosineEmbeddingLoss with target 1). (N, C), (N, C) -> scalar."""
    cos = F.cosine_similarity(student_hidden.float(), teacher_hidden.float(), dim=-1, eps=1e-8)
    return _reduce(1.0 - cos, reduction)


def hidden_mse_loss(student_hidden: torch.Tensor, teacher_hidden: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared difference over the C features, per row. (N, C), (N, C) -> scalar."""
    return _reduce((student_hidden.float() - teacher_hidden.float()).pow(2).mean(-1), reduction)
