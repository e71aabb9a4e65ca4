"""DistilBertForSequenceClassification forward throughput: polyformer vs transformers 4.37.2, one process.

Run with the reference venv's python and the repo on the path, so both libraries import:

    PYTHONPATH=. .refvenv/bin/python benchmarks/distilbert_seqcls.py [--reps 30] [--threads 2]

Setup: random base-size weights (DistilBertConfig() defaults: dim 768, 6 layers, 12 heads), saved once
by transformers and loaded by both libraries; a batch of 8 x 128 token ids whose rows have lengths
from 128 down to 77 (mean 80% of 128, attention_mask zeros at the end of rows); fp32, eval mode,
`torch.inference_mode()`, `torch.set_num_threads(threads)`. Every model is warmed up, then the
repetitions are interleaved (each repetition times every model once, in a rotating order) and the
median time per batch is reported as sequences per second.

transformers is timed with its default attention (eager in 4.37.2) and, if its DistilBERT accepts it,
attn_implementation="sdpa"; polyformer with its default (sdpa) and with "eager".
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

import polyformer
import transformers

BATCH, SEQ = 8, 128


def make_inputs(seed: int = 0) -> dict[str, torch.Tensor]:
    """(8, 128) ids with right padding: row lengths 128 -> 77, mean 102.5 = 80% of 128."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.linspace(SEQ, 77, BATCH).round().long()  # (B,)
    mask = (torch.arange(SEQ)[None, :] < lengths[:, None]).long()  # (B, T)
    ids = torch.randint(1000, 30000, (BATCH, SEQ), generator=g) * mask  # pad id 0 after each row's end
    return {"input_ids": ids, "attention_mask": mask}


def load_models(folder: Path) -> tuple[dict[str, torch.nn.Module], dict[str, str]]:
    models, notes = {}, {}
    for impl in (None, "sdpa"):
        kwargs = {} if impl is None else {"attn_implementation": impl}
        try:
            model = transformers.DistilBertForSequenceClassification.from_pretrained(str(folder), **kwargs)
        except (ValueError, ImportError) as e:
            notes[f"transformers {impl}"] = f"rejected: {str(e).split('. ')[0]}"
            continue
        models[f"transformers {transformers.__version__} ({model.config._attn_implementation})"] = model
    for impl in (None, "eager"):
        kwargs = {} if impl is None else {"attn_implementation": impl}
        model = polyformer.DistilBertForSequenceClassification.from_pretrained(str(folder), **kwargs)
        models[f"polyformer {polyformer.__version__} ({model.config._attn_implementation})"] = model
    return {name: m.eval() for name, m in models.items()}, notes


def bench(models: dict[str, torch.nn.Module], inputs: dict, reps: int, warmup: int) -> dict[str, list[float]]:
    times = {name: [] for name in models}
    names = list(models)
    with torch.inference_mode():
        for name in names:
            for _ in range(warmup):
                models[name](**inputs)
        for rep in tqdm(range(reps), desc="repetitions", unit="rep"):
            for name in names[rep % len(names):] + names[:rep % len(names)]:  # rotate the order
                start = time.perf_counter()
                models[name](**inputs)
                times[name].append(time.perf_counter() - start)
    return times


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=30, help="timed repetitions per model (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per model first (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default: %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        config = transformers.DistilBertConfig()  # base size: dim 768, 6 layers, 12 heads
        transformers.DistilBertForSequenceClassification(config).save_pretrained(tmp)
        models, notes = load_models(Path(tmp))

    inputs = make_inputs()
    with torch.inference_mode():
        logits = {name: model(**inputs).logits for name, model in models.items()}
    first = next(iter(logits.values()))
    agreement = max((x - first).abs().max().item() for x in logits.values())

    times = bench(models, inputs, args.reps, args.warmup)
    medians = {name: statistics.median(t) for name, t in times.items()}
    baseline = next(name for name in medians if name.startswith("transformers"))

    print(f"\nDistilBertForSequenceClassification forward, batch {BATCH} x {SEQ} "
          f"({inputs['attention_mask'].float().mean():.0%} real tokens), fp32, torch {torch.__version__}, "
          f"{args.threads} threads on {cpu_name()}, median of {args.reps}; logits agree to {agreement:.1e}")
    for name, median in medians.items():
        print(f"  {name:<32} {BATCH / median:8.1f} seq/s  ({median * 1e3:7.1f} ms/batch)  "
              f"x{medians[baseline] / median:.2f} vs {baseline}")
    for name, note in notes.items():
        print(f"  {name}: {note}")


if __name__ == "__main__":
    main()
