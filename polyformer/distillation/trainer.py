"""The distillation loop: `Distiller(DistillationArguments(...)).train()`.

One optimizer step consumes one *global batch*: `batch_size × grad_accum × processes` texts (or a token
budget, `max_tokens`, per micro-batch). The whole global batch is tokenized, padded and masked on every
process with a generator seeded by (seed, step), and each process runs its share of the rows. Every loss
term is a sum over its rows (masked positions, or non-pad tokens) divided by the count over the *global*
batch, so the gradient does not depend on how the batch is split: 2 processes × 4 texts, 1 × 8, and 1 × 4
with grad_accum 2 take the same step. Dropout is seeded by (seed, step, rank) at each step, so a resumed run
repeats the uninterrupted one exactly.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch
from tqdm.auto import tqdm

from ..models.distilbert.tokenization import DistilBertTokenizerFast
from ..training import latest_checkpoint, load_checkpoint, save_checkpoint, setup_parallel
from .data import TextStream, global_batch_texts, pad
from .losses import cosine_loss, distillation_loss, hidden_mse_loss, mlm_loss
from .masking import IGNORE_INDEX, mask_tokens
from .models import (DistillationError, StudentWithProjection, check_pair, every_other_layer, load_student,
                     load_teacher, teacher_kind, teacher_outputs)

logger = logging.getLogger(__name__)

__all__ = ["DistillationArguments", "Distiller", "distill"]

LOSS_NAMES = ("ce", "mlm", "cos", "mse")
PROJECTION_FILE = "distillation_projection.safetensors"


@dataclass
class DistillationArguments:
    """Settings of a distillation run (the `polyformer distill` options; defaults: the DistilBERT paper's).

    teacher: BERT (BertModel / BertForMaskedLM) or DistilBERT folder. output_dir: the student's folder;
    checkpoints go to `checkpoint_dir` (default output_dir/checkpoints). data: text / JSONL files.
    layers: teacher layers the student starts from (default: every other one; `student_layers` picks that
    many, evenly spread); student_init: a DistilBERT folder to start from instead.
    alpha_*: loss weights (each may be 0): ce (soft targets at `temperature`, × T²), mlm, cos (hidden
    states), mse (hidden states). projection: learn a linear map when student and teacher widths differ.
    batch_size: texts per process per micro-batch, or max_tokens: a padded-token budget per micro-batch.
    warmup: steps (int) or a fraction of max_steps (float < 1). save_every: checkpoint every N steps
    (0: only at the end). resume: continue from the latest checkpoint. bf16: bfloat16 autocast.
    """

    teacher: str
    output_dir: str
    data: Sequence[str]
    layers: Optional[Sequence[int]] = None
    student_layers: Optional[int] = None
    student_init: Optional[str] = None
    alpha_ce: float = 5.0
    alpha_mlm: float = 2.0
    alpha_cos: float = 1.0
    alpha_mse: float = 0.0
    temperature: float = 2.0
    mlm_probability: float = 0.15
    projection: bool = False
    max_steps: int = 1000
    batch_size: Optional[int] = 8
    max_tokens: Optional[int] = None
    grad_accum: int = 1
    max_length: int = 128
    lr: float = 5e-4
    warmup: float = 0.05
    weight_decay: float = 0.0
    adam_epsilon: float = 1e-6
    max_grad_norm: float = 5.0
    bf16: bool = False
    dropout: Optional[float] = None
    save_every: int = 0
    keep_checkpoints: int = 2
    checkpoint_dir: Optional[str] = None
    resume: bool = False
    seed: int = 56
    text_field: str = "text"
    backend: str = "auto"
    log_every: int = 10
    progress: Optional[bool] = None

    def check(self) -> None:
        """Raise ValueError naming the first bad setting."""
        for name in ("alpha_ce", "alpha_mlm", "alpha_cos", "alpha_mse"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not any((self.alpha_ce, self.alpha_mlm, self.alpha_cos, self.alpha_mse)):
            raise ValueError("every loss weight (alpha_ce, alpha_mlm, alpha_cos, alpha_mse) is 0: nothing to train")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.mlm_probability <= 1:
            raise ValueError(f"mlm_probability must be in (0, 1], got {self.mlm_probability}")
        if (self.batch_size is None) == (self.max_tokens is None):
            raise ValueError("give exactly one of batch_size (texts per micro-batch) and max_tokens (a token budget)")
        for name in ("max_steps", "grad_accum", "max_length", "keep_checkpoints", "log_every"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        for name in ("batch_size", "max_tokens"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not (isinstance(self.save_every, int) and self.save_every >= 0):
            raise ValueError(f"save_every must be an integer >= 0, got {self.save_every!r}")
        if self.warmup < 0 or (not isinstance(self.warmup, int) and self.warmup >= 1):
            raise ValueError(f"warmup must be a step count (int >= 0) or a fraction in [0, 1), got {self.warmup!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.layers is not None and self.student_layers is not None:
            raise ValueError("give layers or student_layers, not both")
        if self.student_init is not None and (self.layers is not None or self.student_layers is not None):
            raise ValueError("student_init replaces layers/student_layers: give one of them")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


class Distiller:
    """Builds teacher, student, optimizer and data stream from `args` (in every process), then `train()`."""

    def __init__(self, args: DistillationArguments):
        args.check()
        self.args = args
        self.par = setup_parallel(args.backend)
        self.output_dir = Path(args.output_dir)
        self.checkpoint_dir = Path(args.checkpoint_dir) if args.checkpoint_dir else self.output_dir / "checkpoints"
        self.stream = TextStream(args.data, args.text_field)  # checks the files first: cheap errors first

        kind, head, n_teacher = teacher_kind(args.teacher)
        self.mlm = head
        if not head:
            if args.alpha_cos == 0 and args.alpha_mse == 0:
                raise DistillationError(f"teacher {args.teacher} has no masked-LM head, so only the hidden-state "
                                        "losses apply, and alpha_cos and alpha_mse are both 0")
            if self.par.is_main:
                logger.warning("teacher %s has no masked-LM head: training with the hidden-state losses only "
                               "(cos %g, mse %g) on unmasked text; alpha_ce and alpha_mlm are not used",
                               args.teacher, args.alpha_cos, args.alpha_mse)
        layers = list(args.layers) if args.layers is not None else every_other_layer(n_teacher, args.student_layers)
        self.tokenizer = DistilBertTokenizerFast.from_pretrained(str(args.teacher))
        torch.manual_seed(args.seed)
        teacher = load_teacher(args.teacher, mlm_head=head)
        student = load_student(args.teacher, layers=layers, mlm_head=head, student_init=args.student_init,
                               dropout=args.dropout)
        hidden_losses = bool(args.alpha_cos or args.alpha_mse)
        check_pair(teacher, student, projection=args.projection, hidden_losses=hidden_losses)
        if len(self.tokenizer) > teacher.config.vocab_size:
            raise DistillationError(f"vocabulary mismatch: the teacher's tokenizer has {len(self.tokenizer)} "
                                    f"tokens, its model {teacher.config.vocab_size}")
        needs_projection = args.projection and student.config.dim != teacher.config.dim
        model = StudentWithProjection(student, teacher.config.dim if needs_projection else None)
        self.teacher = teacher.to(self.par.device)
        self.student_layers = layers if args.student_init is None else None

        optimizer = torch.optim.AdamW(_param_groups(model, args.weight_decay), lr=args.lr, eps=args.adam_epsilon,
                                      betas=(0.9, 0.98))
        self.step = 0
        resume_from = latest_checkpoint(self.checkpoint_dir) if args.resume else None
        if args.resume and resume_from is None and self.par.is_main:
            logger.warning("resume: no checkpoint in %s, starting from the beginning", self.checkpoint_dir)
        if resume_from is None and not args.resume and latest_checkpoint(self.checkpoint_dir) is not None:
            raise DistillationError(f"{self.checkpoint_dir} already holds checkpoints: pass resume=True (--resume) "
                                    "to continue that run, or choose another output folder")
        state = None
        if resume_from is not None:
            tensors, state = load_checkpoint(resume_from)
            self._check_resumable(state, resume_from)
            model.load_state_dict(tensors)
        self.model, self.optimizer = self.par.prepare(model, optimizer)
        warmup = args.warmup if isinstance(args.warmup, int) else int(args.warmup * args.max_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _linear_warmup(warmup, args.max_steps))
        if state is not None:
            if state["optimizer"] is None:
                raise DistillationError(f"{resume_from} comes from a run whose optimizer state was sharded (FSDP / "
                                        "DeepSpeed) and holds only the model: it cannot be resumed exactly")
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["rng"]["torch"])
            self.step = int(state["step"])
            self.stream.skip(int(state["data_position"]))
            if self.par.is_main:
                logger.info("resumed from %s (step %d)", resume_from, self.step)
        special = set(self.tokenizer.all_special_ids) | {self.tokenizer.pad_token_id}
        self._special_ids = sorted(i for i in special if i is not None)

    # --- the loop ------------------------------------------------------------------------------------

    def train(self, until_step: Optional[int] = None) -> Path:
        """Run to max_steps (or stop after `until_step`, with a checkpoint there, to split a run across
        jobs); returns the output folder. The student is saved (main process) when max_steps is reached."""
        args, par = self.args, self.par
        stop = args.max_steps if until_step is None else min(until_step, args.max_steps)
        bar = tqdm(total=args.max_steps, initial=self.step, desc="distill", unit="step",
                   disable=not par.is_main or (None if args.progress is None else not args.progress))
        while self.step < stop:
            parts = self.train_step()
            self.step += 1
            loss = self.weighted(parts)
            shown = {n: f"{v:.4f}" for n, v in zip(LOSS_NAMES, parts.tolist()) if getattr(args, f"alpha_{n}")
                     and (self.mlm or n in ("cos", "mse"))}
            bar.set_postfix(loss=f"{loss:.4f}", **shown)
            bar.update(1)
            if par.is_main and (self.step % args.log_every == 0 or self.step == args.max_steps):
                logger.info("step %d/%d loss %.4f (%s) lr %.3g", self.step, args.max_steps, loss,
                            " ".join(f"{k} {v}" for k, v in shown.items()), self.scheduler.get_last_lr()[0])
            if args.save_every and self.step % args.save_every == 0 or self.step == stop:
                self.save_checkpoint()
        bar.close()
        if self.step >= args.max_steps:
            self.save_student()
        return self.output_dir

    def weighted(self, parts: torch.Tensor) -> float:
        """The total loss from the (ce, mlm, cos, mse) terms."""
        return float(sum(getattr(self.args, f"alpha_{n}") * v for n, v in zip(LOSS_NAMES, parts.tolist())))

    def next_batch(self) -> dict:
        """The next global batch: its texts taken from the stream, tokenized, padded and (with an MLM
        teacher) masked with the generator of this step; plus the global counts the losses divide by."""
        args = self.args
        tokenize = lambda text: self.tokenizer(text, truncation=True, max_length=args.max_length)["input_ids"]
        chunks = global_batch_texts(self.stream, tokenize, n_chunks=self.par.world_size * args.grad_accum,
                                    batch_size=args.batch_size, max_tokens=args.max_tokens)
        ids, attention = pad([seq for chunk in chunks for seq in chunk], self.tokenizer.pad_token_id)
        labels = None
        if self.mlm:
            generator = torch.Generator().manual_seed(args.seed * 1_000_003 + self.step)
            ids, labels = mask_tokens(ids, special_ids=self._special_ids, mask_token_id=self.tokenizer.mask_token_id,
                                      vocab_size=self.teacher.config.vocab_size, probability=args.mlm_probability,
                                      generator=generator)
        starts = [0]
        for chunk in chunks:
            starts.append(starts[-1] + len(chunk))
        counts = {"masked": max(int((labels != IGNORE_INDEX).sum()), 1) if labels is not None else 1,
                  "tokens": max(int(attention.sum()), 1)}
        return {"input_ids": ids, "attention_mask": attention, "labels": labels, "starts": starts, "counts": counts}

    def micro_batches(self, batch: dict):
        """This process's micro-batches of a global batch: (k, input_ids, attention_mask, labels), each
        trimmed to its longest text and on the device."""
        world, device = self.par.world_size, self.par.device
        for k in range(self.args.grad_accum):
            c = k * world + self.par.rank
            rows = slice(batch["starts"][c], batch["starts"][c + 1])
            attention = batch["attention_mask"][rows]
            length = int(attention.sum(1).max())
            labels = batch["labels"][rows, :length].to(device) if batch["labels"] is not None else None
            yield k, batch["input_ids"][rows, :length].to(device), attention[:, :length].to(device), labels

    def train_step(self, batch: Optional[dict] = None) -> torch.Tensor:
        """One optimizer step over one global batch (default: the next one); returns its loss terms
        (ce, mlm, cos, mse), unweighted, as they were before the step."""
        args, par = self.args, self.par
        batch = self.next_batch() if batch is None else batch
        torch.manual_seed(args.seed + 7919 * (self.step + 1) + 104729 * par.rank)  # dropout of this step
        parts = torch.zeros(len(LOSS_NAMES))
        for k, x, mask, labels in self.micro_batches(batch):
            with par.accumulate(self.model, sync=k == args.grad_accum - 1):
                terms, s_logits, s_hidden = self._forward(x, mask, labels, batch["counts"])
                loss = sum(getattr(args, f"alpha_{n}") * terms[i] for i, n in enumerate(LOSS_NAMES))
                # zero-weighted outputs join the graph so every parameter gets a (zero) gradient, as DDP wants
                loss = loss + 0.0 * s_hidden.sum() + (0.0 * s_logits.sum() if s_logits is not None else 0.0)
                par.backward(loss * par.world_size)  # DDP averages over processes; the terms are global means
            parts += torch.stack([t.detach().float().cpu() for t in terms])
        par.clip_grad_norm_(self.model, args.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return par.all_reduce_sum(parts.to(par.device)).cpu()

    def evaluate(self, batch: dict) -> torch.Tensor:
        """The loss terms (ce, mlm, cos, mse) of a global batch without training (dropout off)."""
        model = self.par.unwrap(self.model)
        was_training = model.training
        model.eval()
        parts = torch.zeros(len(LOSS_NAMES))
        with torch.no_grad():
            for _, x, mask, labels in self.micro_batches(batch):
                terms = self._forward(x, mask, labels, batch["counts"], model=model)[0]
                parts += torch.stack([t.float().cpu() for t in terms])
        model.train(was_training)
        return self.par.all_reduce_sum(parts.to(self.par.device)).cpu()

    def _forward(self, x, mask, labels, counts, model=None):
        with torch.autocast(device_type=self.par.device.type, dtype=torch.bfloat16, enabled=self.args.bf16):
            t_logits, t_hidden = teacher_outputs(self.teacher, x, mask)
            s_logits, s_hidden = (model or self.model)(x, mask)
        return self.loss_terms(s_logits, t_logits, s_hidden, t_hidden, mask, labels, counts), s_logits, s_hidden

    def loss_terms(self, s_logits, t_logits, s_hidden, t_hidden, mask, labels, counts) -> list[torch.Tensor]:
        """(ce, mlm, cos, mse) of one micro-batch, each its row sum over the global batch's row count."""
        zero = s_hidden.new_zeros((), dtype=torch.float32)
        ce = mlm = cos = mse = zero
        if labels is not None and s_logits is not None:
            chosen = labels != IGNORE_INDEX
            if self.args.alpha_ce:
                ce = distillation_loss(s_logits[chosen], t_logits[chosen], self.args.temperature, "sum") \
                    / counts["masked"]
            if self.args.alpha_mlm:
                mlm = mlm_loss(s_logits[chosen], labels[chosen], "sum") / counts["masked"]
        tokens = mask.bool()
        if self.args.alpha_cos:
            cos = cosine_loss(s_hidden[tokens], t_hidden[tokens], "sum") / counts["tokens"]
        if self.args.alpha_mse:
            mse = hidden_mse_loss(s_hidden[tokens], t_hidden[tokens], "sum") / counts["tokens"]
        return [ce, mlm, cos, mse]

    # --- saving --------------------------------------------------------------------------------------

    def save_checkpoint(self) -> Optional[Path]:
        """Write a checkpoint of the current step (main process; the others wait)."""
        tensors = self.par.full_state_dict(self.model)
        path = None
        if self.par.is_main:
            state = {
                "step": self.step,
                "data_position": self.stream.position,
                "global_batch": self._global_batch(),
                "optimizer": None if self.par.shards_optimizer else self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": {"torch": torch.get_rng_state(), "seed": self.args.seed},
                "world_size": self.par.world_size,
            }
            path = save_checkpoint(self.checkpoint_dir, self.step, tensors, state, keep=self.args.keep_checkpoints)
        self.par.barrier()
        return path

    def save_student(self) -> None:
        """save_pretrained the student (and the tokenizer) into output_dir; the projection beside it."""
        state = self.par.full_state_dict(self.model)
        if self.par.is_main:
            model = self.par.unwrap(self.model)
            student_state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
            model.model.save_pretrained(self.output_dir, state_dict=student_state)
            self.tokenizer.save_pretrained(self.output_dir)
            if model.projection is not None:
                from safetensors.torch import save_file

                save_file({k[len("projection."):]: v.contiguous() for k, v in state.items()
                           if k.startswith("projection.")}, str(self.output_dir / PROJECTION_FILE))
            logger.info("saved the student (%d layers%s) to %s", model.model.config.n_layers,
                        f" from teacher layers {self.student_layers}" if self.student_layers else "", self.output_dir)
        self.par.barrier()

    def _global_batch(self) -> list:
        a = self.args
        return [self.par.world_size * a.grad_accum, a.batch_size or 0, a.max_tokens or 0]

    def _check_resumable(self, state: dict, path: Path) -> None:
        saved, now = list(state.get("global_batch", [])), self._global_batch()
        if saved and (saved[0] * max(saved[1], 1) != now[0] * max(now[1], 1) or saved[2] != now[2]
                      or (saved[2] and saved[0] != now[0])):
            raise DistillationError(f"{path} was written with another global batch (processes × grad_accum, "
                                    f"batch_size, max_tokens = {saved}, now {now}): resuming would not continue it")

    def close(self) -> None:
        self.par.close()


def distill(args: DistillationArguments | None = None, **kwargs) -> Path:
    """Distil as `args` (or keyword arguments of DistillationArguments) say; returns the student's folder.

        >>> from polyformer.distillation import distill
        >>> distill(teacher="bert-folder", output_dir="student", data=["train.txt"], max_steps=100)
    """
    if args is None:
        args = DistillationArguments(**kwargs)
    elif kwargs:
        args = dataclasses.replace(args, **kwargs)
    distiller = Distiller(args)
    try:
        return distiller.train()
    finally:
        distiller.close()


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on biases and LayerNorm weights (the research script's rule)."""
    decay, plain = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (plain if name.endswith("bias") or "layer_norm" in name or "LayerNorm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def _linear_warmup(warmup: int, total: int):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))
    return factor
