"""`make distill-demo`: distil the real all-MiniLM-L6-v2 (6 layers) into a 3-layer student on sentences
from the Python standard library's docstrings, then compare the student with its teacher.

    python scripts/distill_demo.py [--teacher .cache/all-MiniLM-L6-v2] [--out .cache/distilled-MiniLM-L3]
                                   [--max-steps 200 --batch-size 16 --lr 5e-4 --threads 2]

The teacher is a sentence-embedding BertModel without an MLM head, so the student (teacher layers 0, 2, 4,
`polyformer convert`'s initialisation) learns with the cosine loss on the last hidden states. Reported,
for the initial student (no training) and the trained one: the mean cosine between student and teacher
sentence embeddings (mean pooling + L2 normalisation, as `polyformer demo`) on held-out sentences, how
many of the demo's queries keep the teacher's top-1 match and top-3 order, and the student's forward-pass
speed-up. --eval-only recomputes these for a trained student; a run that was interrupted continues from
its last checkpoint (every 100 steps). The last line
is a README table row.
"""

from __future__ import annotations

import argparse
import ast
import datetime
import hashlib
import logging
import re
import sysconfig
import time
from pathlib import Path

import torch

from polyformer import DistilBertModel, DistilBertTokenizerFast
from polyformer.cli import DEMO_CORPUS, DEMO_QUERIES, sentence_embeddings
from polyformer.distillation import distill
from polyformer.distillation.models import load_student, load_teacher

HELD_OUT = 256


def stdlib_sentences() -> list[str]:
    """Every docstring sentence of the standard library's top-level modules (40-200 characters, 6+ words),
    in sha256 order (the same picking as the tokenizer fixtures)."""
    found = set()
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for paragraph in re.split(r"\n\s*\n", ast.get_docstring(node) or ""):
                if ">>>" in paragraph or "::" in paragraph:
                    continue
                for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z])", " ".join(paragraph.split())):
                    if 40 <= len(sentence) <= 200 and len(sentence.split()) >= 6 and sentence[0].isupper() \
                            and sentence[-1] in ".!?":
                        found.add(sentence)
    return sorted(found, key=lambda s: hashlib.sha256(s.encode()).hexdigest())


def rankings(model, tokenizer, k: int = 3) -> list[list[int]]:
    corpus = sentence_embeddings(model, tokenizer, DEMO_CORPUS)
    scores = sentence_embeddings(model, tokenizer, DEMO_QUERIES) @ corpus.T
    return scores.topk(k).indices.tolist()


def speedup(teacher, student, tokenizer, texts: list[str], batch_size: int = 32, repeats: int = 5) -> float:
    """Teacher time / student time of the forward passes over `texts` (tokenized beforehand), each the best
    of `repeats` runs, the two models taking turns (so a busy machine slows both alike)."""
    batches = [tokenizer(texts[i:i + batch_size], padding=True, truncation=True, return_tensors="pt")
               for i in range(0, len(texts), batch_size)]
    best = {"teacher": float("inf"), "student": float("inf")}
    with torch.no_grad():
        for _ in range(repeats):
            for name, model in (("teacher", teacher), ("student", student)):
                start = time.perf_counter()
                for batch in batches:
                    model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
                best[name] = min(best[name], time.perf_counter() - start)
    return best["teacher"] / best["student"]


def compare(student, teacher, tokenizer, held_out: list[str]) -> dict:
    s = sentence_embeddings(student, tokenizer, held_out)
    t = sentence_embeddings(teacher, tokenizer, held_out)
    pairs = list(zip(rankings(student, tokenizer), rankings(teacher, tokenizer)))
    return {"cosine": float((s * t).sum(1).mean()), "top1": sum(a[0] == b[0] for a, b in pairs),
            "top3": sum(a == b for a, b in pairs)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher", type=Path, default=Path(".cache/all-MiniLM-L6-v2"))
    p.add_argument("--out", type=Path, default=Path(".cache/distilled-MiniLM-L3"))
    p.add_argument("--max-steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eval-only", action="store_true", help="compare an already trained --out, no training")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    torch.set_num_threads(args.threads)
    if not (args.teacher / "config.json").is_file():
        raise SystemExit(f"no teacher in {args.teacher}: run `python scripts/fetch_minilm.py` (or `make demo`)")

    sentences = stdlib_sentences()
    held_out, train = sentences[:HELD_OUT], sentences[HELD_OUT:]
    data_dir = args.out.parent / (args.out.name + "-data")
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")

    tokenizer = DistilBertTokenizerFast.from_pretrained(str(args.teacher))
    teacher = load_teacher(args.teacher, mlm_head=False)
    initial = load_student(args.teacher, layers=[0, 2, 4], mlm_head=False).eval()
    before = compare(initial, teacher, tokenizer, held_out)

    minutes = 0.0
    if not args.eval_only:
        start = time.perf_counter()
        distill(teacher=str(args.teacher), output_dir=str(args.out), data=[str(data_dir / "train.txt")],
                student_layers=3, alpha_ce=0.0, alpha_mlm=0.0, alpha_cos=1.0, max_steps=args.max_steps,
                batch_size=args.batch_size, lr=args.lr, warmup=0.1, max_length=128, save_every=100, resume=True)
        minutes = (time.perf_counter() - start) / 60

    student = DistilBertModel.from_pretrained(str(args.out)).eval()
    after = compare(student, teacher, tokenizer, held_out)
    ratio = speedup(teacher, student, tokenizer, held_out)
    n = len(DEMO_QUERIES)
    print(f"\n{len(train)} training sentences, {len(held_out)} held out; student in {args.out}")
    for name, result in (("initial student (teacher layers 0,2,4)", before), ("trained student", after)):
        print(f"{name}: held-out cosine {result['cosine']:.4f}, top-1 kept {result['top1']}/{n}, "
              f"top-3 order kept {result['top3']}/{n}")
    print(f"forward-pass speed-up over the teacher: {ratio:.2f}x")
    for query, ranks, teacher_ranks in zip(DEMO_QUERIES, rankings(student, tokenizer), rankings(teacher, tokenizer)):
        print(f"  {query}\n    student: {[DEMO_CORPUS[i] for i in ranks]}\n    teacher: "
              f"{[DEMO_CORPUS[i] for i in teacher_ranks]}")
    print(f"\n| {datetime.date.today()} | {args.max_steps} × {args.batch_size}, lr {args.lr:g} | {minutes:.1f} | "
          f"{before['cosine']:.3f} → {after['cosine']:.3f} | {before['top1']} → {after['top1']} of {n} | "
          f"{before['top3']} → {after['top3']} of {n} | {ratio:.2f}× |")

if __name__ == "__main__":
    main()
