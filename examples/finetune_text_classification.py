"""Fine-tune a text classifier (DistilBERT, or any family with AutoModelForSequenceClassification) on your
CSV / JSONL files, in one process or data-parallel:

    python examples/finetune_text_classification.py MODEL --train train.csv --eval dev.csv --output-dir out
    torchrun --nproc-per-node 2 examples/finetune_text_classification.py MODEL --train ... (same result)
    accelerate launch examples/finetune_text_classification.py MODEL --train ...

Each row has a text column (--text-column, default "text") and a label column (--label-column, "label");
labels may be any strings. It reports accuracy on --eval and writes the model (save_pretrained, with
id2label) and tokenizer to --output-dir. --batch-size is per process (polyformer.training.parallel).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

from polyformer import AutoModelForSequenceClassification, AutoTokenizer
from polyformer.training import read_records, setup_parallel, shard_batches

logger = logging.getLogger("finetune_text_classification")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="model folder (e.g. a distilled student) or Hub id")
    p.add_argument("--train", required=True, help="training CSV / JSONL file")
    p.add_argument("--eval", help="evaluation CSV / JSONL file (accuracy)")
    p.add_argument("--output-dir", required=True, help="where the fine-tuned model is saved")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=16, help="per process")
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--warmup", type=float, default=0.1, help="share of the steps")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    par = setup_parallel()
    torch.manual_seed(args.seed)
    columns = (args.text_column, args.label_column)
    train = read_records(args.train, required=columns)
    evaluation = read_records(args.eval, required=columns) if args.eval else []
    labels = sorted({str(row[args.label_column]) for row in train})
    label2id = {label: i for i, label in enumerate(labels)}
    unknown = sorted({str(r[args.label_column]) for r in evaluation} - set(labels))
    if unknown:
        raise ValueError(f"--eval has labels the training data lacks: {unknown[:5]}")

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    model, optimizer = par.prepare(model, optimizer)
    steps = args.epochs * -(-len(train) // (args.batch_size * par.world_size))
    warmup = int(args.warmup * steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / (warmup + 1) if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup)))

    def encode(rows):
        batch = tokenizer([str(r[args.text_column]) for r in rows], padding=True, truncation=True,
                          max_length=args.max_length, return_tensors="pt")
        return {k: v.to(par.device) for k, v in batch.items()}

    model.train()
    bar = tqdm(total=steps, desc="fine-tune", disable=args.quiet or not par.is_main)
    for epoch in range(args.epochs):
        for indices in shard_batches(len(train), args.batch_size, world_size=par.world_size, rank=par.rank,
                                     seed=args.seed, epoch=epoch):
            rows = [train[i] for i in indices]
            target = torch.tensor([label2id[str(r[args.label_column])] for r in rows], device=par.device)
            with torch.autocast(device_type=par.device.type, dtype=torch.bfloat16, enabled=args.bf16):
                loss = model(**encode(rows), labels=target).loss
            par.backward(loss)
            par.clip_grad_norm_(model, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
    bar.close()

    metrics = {"train_examples": len(train), "labels": labels}
    if evaluation:
        model.eval()
        counts = torch.zeros(2, device=par.device)  # correct, seen
        with torch.no_grad():
            for start in range(par.rank * args.batch_size, len(evaluation), args.batch_size * par.world_size):
                rows = evaluation[start:start + args.batch_size]
                predicted = model(**encode(rows)).logits.argmax(-1).tolist()
                counts[0] += sum(int(p == label2id[str(r[args.label_column])]) for p, r in zip(predicted, rows))
                counts[1] += len(rows)
        correct, seen = par.all_reduce_sum(counts).tolist()
        metrics.update(eval_examples=int(seen), accuracy=correct / seen)
    if par.is_main:
        out = Path(args.output_dir)
        par.unwrap(model).save_pretrained(out)
        tokenizer.save_pretrained(out)
        (out / "eval_results.json").write_text(json.dumps(metrics, indent=2) + "\n")
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
