"""Teacher and student for distillation, both DistilBERT-shaped.

A BERT teacher folder (BertModel or BertForMaskedLM as transformers saves it) is converted in memory
exactly as `polyformer convert bert-to-distilbert` converts it, with all its layers (and its masked-LM
head onto DistilBertForMaskedLM's when it has one); a DistilBERT teacher folder is loaded as it is. The
student is, by default, the same conversion with every other teacher layer (the paper's initialisation),
or the layers named, or an existing DistilBERT folder (`student_init`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn as nn

from ..checkpoints import find_weight_files, iter_state_dict
from ..hub import read_json
from ..models.distilbert.configuration import DistilBertConfig
from ..models.distilbert.convert_bert import bert_as_distilbert, has_mlm_head
from ..models.distilbert.modeling_torch import DistilBertForMaskedLM, DistilBertModel

logger = logging.getLogger(__name__)

__all__ = ["DistillationError", "StudentWithProjection", "check_pair", "every_other_layer", "load_student",
           "load_teacher", "teacher_kind"]

TEACHER_TYPES = ("bert", "distilbert")


class DistillationError(ValueError):
    """The teacher, student or settings cannot be distilled together."""


def teacher_kind(path: str | os.PathLike) -> tuple[str, bool, int]:
    """(model_type, has a masked-LM head, number of layers) of a teacher folder; raises for another family."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"teacher: no config.json in {path}")
    config = read_json(path / "config.json", what="teacher config")
    kind = config.get("model_type")
    if kind not in TEACHER_TYPES:
        raise DistillationError(f"teacher {path} is a {kind!r} model; distillation takes a BERT ('bert') or "
                                "DistilBERT ('distilbert') teacher")
    if kind == "bert":
        return kind, has_mlm_head(path), int(config["num_hidden_layers"])
    names = _weight_names(path)
    return kind, "vocab_projector.bias" in names, int(config.get("n_layers", 6))


def every_other_layer(n_teacher: int, n_student: Optional[int] = None) -> list[int]:
    """The teacher layers a student starts from: n_student (default: half, rounded up) spread evenly from
    layer 0, e.g. 6 -> [0, 2, 4], 12 -> [0, 2, 4, 6, 8, 10]."""
    n_student = (n_teacher + 1) // 2 if n_student is None else n_student
    if not 1 <= n_student <= n_teacher:
        raise DistillationError(f"student_layers must be in 1..{n_teacher} (the teacher's layers), got {n_student}")
    return [(i * n_teacher) // n_student for i in range(n_student)]


def load_teacher(path: str | os.PathLike, mlm_head: bool) -> nn.Module:
    """The teacher as DistilBertForMaskedLM (mlm_head) or DistilBertModel, in eval mode, frozen."""
    kind = teacher_kind(path)[0]
    if kind == "bert":
        model = _from_tensors(*bert_as_distilbert(path, None, mlm_head=mlm_head), mlm_head=mlm_head)
    else:
        model = (DistilBertForMaskedLM if mlm_head else DistilBertModel).from_pretrained(str(path))
    model.eval().requires_grad_(False)
    return model


def load_student(teacher: str | os.PathLike, *, layers: Sequence[int], mlm_head: bool,
                 student_init: str | os.PathLike | None = None, dropout: Optional[float] = None) -> nn.Module:
    """The student: the teacher's `layers` (converted as `convert` does) or the DistilBERT folder
    `student_init`; with a masked-LM head when `mlm_head`. `dropout` overrides both dropout rates."""
    if student_init is not None:
        config = read_json(Path(student_init) / "config.json", what="student config")
        if config.get("model_type") != "distilbert":
            raise DistillationError(f"student_init {student_init} is a {config.get('model_type')!r} model; "
                                    "the student must be a DistilBERT folder")
        model = (DistilBertForMaskedLM if mlm_head else DistilBertModel).from_pretrained(str(student_init))
    elif teacher_kind(teacher)[0] == "bert":
        model = _from_tensors(*bert_as_distilbert(teacher, layers, mlm_head=mlm_head), mlm_head=mlm_head)
    else:
        model = _distilbert_layers(teacher, layers, mlm_head)
    if dropout is not None:
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.p = dropout
        for module in model.modules():
            if hasattr(module, "dropout") and isinstance(module.dropout, float):  # attention probabilities
                module.dropout = dropout
    return model.train()


def check_pair(teacher: nn.Module, student: nn.Module, *, projection: bool, hidden_losses: bool) -> None:
    """Raise DistillationError when the two cannot be compared: other vocabularies, or other widths with a
    hidden-state loss and no projection."""
    t, s = teacher.config, student.config
    if t.vocab_size != s.vocab_size:
        raise DistillationError(f"vocabulary mismatch: the teacher has {t.vocab_size} tokens, the student "
                                f"{s.vocab_size}; both must use the teacher's tokenizer")
    if hidden_losses and t.dim != s.dim and not projection:
        wider = "wider" if s.dim > t.dim else "narrower"
        raise DistillationError(f"the student (dim {s.dim}) is {wider} than the teacher (dim {t.dim}): the "
                                "hidden-state losses need projection=True (--projection), a learned linear map "
                                "from the student's width to the teacher's")


class StudentWithProjection(nn.Module):
    """The student plus an optional linear map of its last hidden state to the teacher's width (trained
    with it, not part of the saved student). forward -> (vocabulary logits or None, hidden (B, T, C_t))."""

    def __init__(self, model: nn.Module, teacher_dim: Optional[int] = None):
        super().__init__()
        self.model = model
        dim = model.config.dim
        self.projection = nn.Linear(dim, teacher_dim) if teacher_dim is not None else None

    def forward(self, input_ids, attention_mask):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                         return_dict=True)
        logits = getattr(out, "logits", None)
        hidden = out.hidden_states[-1] if logits is not None else out.last_hidden_state
        return logits, hidden if self.projection is None else self.projection(hidden)


def teacher_outputs(teacher: nn.Module, input_ids, attention_mask):
    """(logits or None, last hidden state) of the teacher, without gradients."""
    with torch.no_grad():
        out = teacher(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True,
                      return_dict=True)
    logits = getattr(out, "logits", None)
    return logits, out.hidden_states[-1] if logits is not None else out.last_hidden_state


# --- building models from tensors -------------------------------------------------------------------

def _from_tensors(config: dict, tensors: dict[str, torch.Tensor], *, mlm_head: bool) -> nn.Module:
    config = {k: v for k, v in config.items() if k not in ("model_type", "architectures")}
    cls = DistilBertForMaskedLM if mlm_head else DistilBertModel
    model = cls(DistilBertConfig(**config, architectures=[cls.__name__]))
    dtype = next(iter(tensors.values())).dtype
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    tied = {"vocab_projector.weight"} if mlm_head else set()
    if set(missing) - tied or unexpected:
        raise DistillationError(f"converted teacher tensors do not fit {cls.__name__}: missing "
                                f"{sorted(set(missing) - tied)[:4]}, unexpected {sorted(unexpected)[:4]}")
    model.tie_weights()
    return model.float() if dtype != torch.float32 else model


def _weight_names(path: Path) -> set[str]:
    return {name for name, _ in iter_state_dict(find_weight_files(str(path)))}


def _distilbert_layers(path: str | os.PathLike, layers: Sequence[int], mlm_head: bool) -> nn.Module:
    """A DistilBERT teacher's chosen layers, renumbered 0.., as a new (smaller) DistilBERT."""
    cls = DistilBertForMaskedLM if mlm_head else DistilBertModel
    teacher = cls.from_pretrained(str(path))
    config = DistilBertConfig(**{**teacher.config.to_dict(), "n_layers": len(layers)})
    student = cls(config)
    base_t = teacher.distilbert if mlm_head else teacher
    base_s = student.distilbert if mlm_head else student
    n = len(base_t.transformer.layer)
    if any(not 0 <= i < n for i in layers):
        raise DistillationError(f"layers {list(layers)} out of range: the teacher has layers 0..{n - 1}")
    state = {k: v for k, v in teacher.state_dict().items() if ".transformer.layer." not in f".{k}"}
    student.load_state_dict(state, strict=False)
    for j, i in enumerate(layers):
        base_s.transformer.layer[j].load_state_dict(base_t.transformer.layer[i].state_dict())
    student.tie_weights()
    return student
