"""Fine-tune extractive question answering (DistilBERT, or any family with AutoModelForQuestionAnswering)
on your CSV / JSONL files, in one process or data-parallel:

    python examples/finetune_question_answering.py MODEL --train train.jsonl --eval dev.jsonl --output-dir out
    torchrun --nproc-per-node 2 examples/finetune_question_answering.py MODEL --train ...
    accelerate launch examples/finetune_question_answering.py MODEL --train ...

A row has `question`, `context` and the answer, either SQuAD's way (`answers`: {"text": [...],
"answer_start": [...]}, JSONL) or flat (`answer_text`, `answer_start`, CSV or JSONL); answer_start is a
character offset into the context. Contexts longer than --max-length are cut (no document stride: an
answer cut away trains towards [CLS]). It reports SQuAD's exact match and F1 on --eval (the best span of
at most --max-answer-length tokens inside the context) and saves the model and tokenizer.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import re
import string
import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

from polyformer import AutoModelForQuestionAnswering, AutoTokenizer
from polyformer.training import read_records, setup_parallel, shard_batches

logger = logging.getLogger("finetune_question_answering")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="model folder (e.g. a distilled student) or Hub id")
    p.add_argument("--train", required=True, help="training CSV / JSONL file")
    p.add_argument("--eval", help="evaluation CSV / JSONL file (exact match and F1)")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=16, help="per process")
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--max-length", type=int, default=384)
    p.add_argument("--max-answer-length", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def answer_of(row: dict) -> tuple[str, int]:
    """(answer text, character start) of a row, SQuAD-style or flat."""
    if "answers" in row:
        answers = row["answers"]
        return answers["text"][0], int(answers["answer_start"][0])
    if "answer_text" in row and "answer_start" in row:
        return row["answer_text"], int(row["answer_start"])
    raise ValueError(f"an example has neither 'answers' nor 'answer_text' + 'answer_start': {sorted(row)}")


def gold_answers(row: dict) -> list[str]:
    return list(row["answers"]["text"]) if "answers" in row else [row["answer_text"]]


def encode(tokenizer, rows, max_length, device):
    """The batch (input_ids, attention_mask), start/end token labels, offsets and sequence ids."""
    batch = tokenizer([r["question"] for r in rows], [r["context"] for r in rows], truncation="only_second",
                      max_length=max_length, padding=True, return_offsets_mapping=True)
    starts, ends = [], []
    for i, row in enumerate(rows):
        text, char_start = answer_of(row)
        char_end = char_start + len(text)
        sequence = batch.sequence_ids(i)
        offsets = batch["offset_mapping"][i]
        start = end = 0  # [CLS] when the answer was cut away
        tokens = [t for t, s in enumerate(sequence) if s == 1]
        inside = [t for t in tokens if offsets[t][0] < char_end and offsets[t][1] > char_start]
        if inside:
            start, end = inside[0], inside[-1]
        starts.append(start)
        ends.append(end)
    tensors = {k: torch.tensor(batch[k], device=device) for k in ("input_ids", "attention_mask")}
    return tensors, torch.tensor(starts, device=device), torch.tensor(ends, device=device), batch


def best_span(start_logits, end_logits, sequence, offsets, max_answer_length) -> tuple[int, int]:
    """Character span of the highest start + end score with start <= end < start + max_answer_length,
    both inside the context."""
    context = [t for t, s in enumerate(sequence) if s == 1]
    best, span = None, (0, 0)
    for s in context:
        for e in context:
            if s <= e < s + max_answer_length:
                score = start_logits[s] + end_logits[e]
                if best is None or score > best:
                    best, span = score, (offsets[s][0], offsets[e][1])
    return span


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize(prediction) == normalize(gold))


def f1(prediction: str, gold: str) -> float:
    p, g = normalize(prediction).split(), normalize(gold).split()
    common = sum((collections.Counter(p) & collections.Counter(g)).values())
    if not p or not g:
        return float(p == g)
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def main(argv=None) -> dict:
    args = parse_args(argv)
    par = setup_parallel()
    torch.manual_seed(args.seed)
    train = read_records(args.train, required=("question", "context"))
    evaluation = read_records(args.eval, required=("question", "context")) if args.eval else []
    for row in train + evaluation:
        answer_of(row)  # every example has an answer: fail before training
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForQuestionAnswering.from_pretrained(args.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    model, optimizer = par.prepare(model, optimizer)

    model.train()
    steps = args.epochs * -(-len(train) // (args.batch_size * par.world_size))
    bar = tqdm(total=steps, desc="fine-tune", disable=args.quiet or not par.is_main)
    for epoch in range(args.epochs):
        for indices in shard_batches(len(train), args.batch_size, world_size=par.world_size, rank=par.rank,
                                     seed=args.seed, epoch=epoch):
            inputs, starts, ends, _ = encode(tokenizer, [train[i] for i in indices], args.max_length, par.device)
            with torch.autocast(device_type=par.device.type, dtype=torch.bfloat16, enabled=args.bf16):
                loss = model(**inputs, start_positions=starts, end_positions=ends).loss
            par.backward(loss)
            par.clip_grad_norm_(model, 1.0)
            optimizer.step()
            optimizer.zero_grad()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()

    metrics = {"train_examples": len(train)}
    if evaluation:
        model.eval()
        sums = torch.zeros(3, device=par.device)  # exact match, F1, examples
        with torch.no_grad():
            for start in range(par.rank * args.batch_size, len(evaluation), args.batch_size * par.world_size):
                rows = evaluation[start:start + args.batch_size]
                inputs, _, _, batch = encode(tokenizer, rows, args.max_length, par.device)
                out = model(**inputs)
                for i, row in enumerate(rows):
                    a, b = best_span(out.start_logits[i].tolist(), out.end_logits[i].tolist(), batch.sequence_ids(i),
                                     batch["offset_mapping"][i], args.max_answer_length)
                    prediction = row["context"][a:b]
                    sums[0] += max(exact_match(prediction, g) for g in gold_answers(row))
                    sums[1] += max(f1(prediction, g) for g in gold_answers(row))
                    sums[2] += 1
        em, f, n = par.all_reduce_sum(sums).tolist()
        metrics.update(eval_examples=int(n), exact_match=100 * em / n, f1=100 * f / n)
    if par.is_main:
        out_dir = Path(args.output_dir)
        par.unwrap(model).save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
        (out_dir / "eval_results.json").write_text(json.dumps(metrics, indent=2) + "\n")
        print(json.dumps(metrics))
    par.barrier()
    par.close()
    return metrics


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        main()
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
