"""`polyformer distill TEACHER STUDENT_OUT --data FILES...` (argparse only until it runs)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_distill(commands, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser(
        "distill", parents=[common], help="distil a BERT/DistilBERT teacher into a smaller DistilBERT student",
        description="The DistilBERT paper's recipe: a student initialised from every other teacher layer, "
                    "trained with soft-target distillation (temperature T), masked-LM and cosine hidden-state "
                    "losses on dynamically masked text. Several processes: `torchrun --nproc-per-node N -m "
                    "polyformer distill ...` or `accelerate launch -m polyformer distill ...` (same global "
                    "batch: --batch-size is per process).")
    p.add_argument("teacher", metavar="TEACHER", help="BERT (BertModel/BertForMaskedLM) or DistilBERT folder")
    p.add_argument("output_dir", metavar="STUDENT_OUT", help="folder for the student (checkpoints in "
                                                             "STUDENT_OUT/checkpoints)")
    p.add_argument("--data", nargs="+", required=True, metavar="FILE", help="plain-text (one text a line) or "
                                                                            "JSONL files")
    p.add_argument("--text-field", default="text", help="JSONL field holding the text (default: %(default)s)")
    student = p.add_mutually_exclusive_group()
    student.add_argument("--layers", metavar="I,J,...", help="teacher layers the student starts from, e.g. 0,2,4")
    student.add_argument("--student-layers", type=int, metavar="N", help="N teacher layers, evenly spread "
                                                                         "(default: every other one)")
    student.add_argument("--student-init", metavar="DIR", help="start from this DistilBERT folder instead")
    p.add_argument("--projection", action="store_true", help="learn a linear map when the widths differ")
    for name, default, text in (("alpha-ce", 5.0, "soft-target (KL) loss"), ("alpha-mlm", 2.0, "masked-LM loss"),
                                ("alpha-cos", 1.0, "cosine hidden-state loss"),
                                ("alpha-mse", 0.0, "MSE hidden-state loss")):
        p.add_argument(f"--{name}", type=float, default=default, help=f"weight of the {text} (default: %(default)s)")
    p.add_argument("--temperature", type=float, default=2.0, help="softmax temperature T (default: %(default)s)")
    p.add_argument("--mlm-probability", type=float, default=0.15, help="share of tokens masked (default: "
                                                                       "%(default)s)")
    p.add_argument("--max-steps", type=int, default=1000, help="optimizer steps (default: %(default)s)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--batch-size", type=int, help="texts per process per micro-batch (default: 8)")
    size.add_argument("--max-tokens", type=int, help="padded-token budget per micro-batch instead")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per step (default: %(default)s)")
    p.add_argument("--max-length", type=int, default=128, help="tokens per text, truncated (default: %(default)s)")
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (default: %(default)s)")
    p.add_argument("--warmup", type=_warmup, default=0.05, help="warmup steps (int) or share of --max-steps "
                                                                "(float < 1; default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay (default: %(default)s)")
    p.add_argument("--adam-epsilon", type=float, default=1e-6, help="AdamW epsilon (default: %(default)s)")
    p.add_argument("--max-grad-norm", type=float, default=5.0, help="gradient clipping (default: %(default)s)")
    p.add_argument("--dropout", type=float, help="override the student's dropout rates")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CPU or GPU)")
    p.add_argument("--save-every", type=int, default=0, help="checkpoint every N steps (default: at the end)")
    p.add_argument("--keep-checkpoints", type=int, default=2, help="checkpoints kept (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint")
    p.add_argument("--seed", type=int, default=56, help="random seed (default: %(default)s)")
    p.add_argument("--backend", choices=("auto", "accelerate", "torch"), default="auto",
                   help="multi-process backend (default: accelerate when installed)")
    p.set_defaults(run=run_distill)


def _warmup(text: str):
    return float(text) if any(ch in text for ch in ".eE") else int(text)


def run_distill(args) -> int:
    from ..models.distilbert.convert_bert import parse_layers
    from .trainer import DistillationArguments, distill

    batch_size = args.batch_size if args.batch_size is not None or args.max_tokens is not None else 8
    out = distill(DistillationArguments(
        teacher=args.teacher, output_dir=args.output_dir, data=[str(Path(f)) for f in args.data],
        layers=None if args.layers is None else parse_layers(args.layers), student_layers=args.student_layers,
        student_init=args.student_init, alpha_ce=args.alpha_ce, alpha_mlm=args.alpha_mlm, alpha_cos=args.alpha_cos,
        alpha_mse=args.alpha_mse, temperature=args.temperature, mlm_probability=args.mlm_probability,
        projection=args.projection, max_steps=args.max_steps, batch_size=batch_size, max_tokens=args.max_tokens,
        grad_accum=args.grad_accum, max_length=args.max_length, lr=args.lr, warmup=args.warmup,
        weight_decay=args.weight_decay, adam_epsilon=args.adam_epsilon,
        max_grad_norm=args.max_grad_norm, bf16=args.bf16, dropout=args.dropout,
        save_every=args.save_every, keep_checkpoints=args.keep_checkpoints, resume=args.resume, seed=args.seed,
        text_field=args.text_field, backend=args.backend, progress=False if args.quiet else None))
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        print(out)
    return 0
