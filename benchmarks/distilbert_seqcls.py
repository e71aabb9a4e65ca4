"""DistilBertForSequenceClassification forward throughput: polyformer vs transformers, one process.

Run it in the benchmark venv (benchmarks/make_venv.sh: transformers 5.23, what users would otherwise pick),
alone on the machine; the reference venv (transformers 4.37.2, with `PYTHONPATH=.`) works too:

    .benchvenv/bin/python benchmarks/distilbert_seqcls.py [--reps 30] [--threads 2] [--dtypes float32,bfloat16]
        [--no-compile]

Setup: random base-size weights (DistilBertConfig() defaults: dim 768, 6 layers, 12 heads), saved once
by transformers and loaded by both libraries; a batch of 8 x 128 token ids whose rows have lengths
from 128 down to 77 (mean 80% of 128, attention_mask zeros at the end of rows); per dtype (loaded with
that torch_dtype), eval mode, `torch.inference_mode()`, `torch.set_num_threads(threads)`. Every model is
warmed up, then the repetitions are interleaved (each repetition times every model once, in a rotating
order) and the median time per batch is reported as sequences per second, with the ratio against
transformers' default in the same dtype.

Models: transformers with its default attention (and "sdpa" if that is not the default and its DistilBERT
accepts it); polyformer with its default (sdpa), with `pack_linears_` (oneDNN-packed linear weights) and,
unless --no-compile, `torch.compile(model)` of the default one (compiled in the warm-up; inductor cannot take
packed weights).
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


def load_models(folder: Path, *, dtype: torch.dtype, compile_models: bool
                ) -> tuple[dict[str, torch.nn.Module], dict[str, str]]:
    models, notes = {}, {}
    for impl in (None, "sdpa"):
        kwargs = {} if impl is None else {"attn_implementation": impl}
        try:
            model = transformers.DistilBertForSequenceClassification.from_pretrained(str(folder), torch_dtype=dtype,
                                                                                     **kwargs)
        except (ValueError, ImportError) as e:
            notes[f"transformers {impl}"] = f"rejected: {str(e).split('. ')[0]}"
            continue
        name = f"transformers {transformers.__version__} ({model.config._attn_implementation})"
        models.setdefault(name, model)  # "sdpa" may be the default already
    load = polyformer.DistilBertForSequenceClassification.from_pretrained
    models["polyformer (sdpa)"] = load(str(folder), torch_dtype=dtype)
    models["polyformer (packed)"] = polyformer.pack_linears_(load(str(folder), torch_dtype=dtype).eval())
    if compile_models:
        models["polyformer (torch.compile)"] = torch.compile(load(str(folder), torch_dtype=dtype).eval())
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
    parser.add_argument("--dtypes", default="float32,bfloat16", help="comma-separated (default: %(default)s)")
    parser.add_argument("--no-compile", action="store_true", help="leave out the torch.compile'd polyformer models")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    inputs = make_inputs()
    print(f"\nDistilBertForSequenceClassification forward, batch {BATCH} x {SEQ} "
          f"({inputs['attention_mask'].float().mean():.0%} real tokens), torch {torch.__version__}, "
          f"{args.threads} threads on {cpu_name()}, median of {args.reps}")

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        config = transformers.DistilBertConfig()  # base size: dim 768, 6 layers, 12 heads
        transformers.DistilBertForSequenceClassification(config).save_pretrained(tmp)
        for dtype_name in args.dtypes.split(","):
            dtype = getattr(torch, dtype_name)
            models, notes = load_models(Path(tmp), dtype=dtype, compile_models=not args.no_compile)
            with torch.inference_mode():
                logits = {name: model(**inputs).logits.float() for name, model in models.items()}
            first = next(iter(logits.values()))
            agreement = max((x - first).abs().max().item() for x in logits.values())
            times = bench(models, inputs, args.reps, args.warmup)
            medians = {name: statistics.median(t) for name, t in times.items()}
            baseline = next(name for name in medians if name.startswith("transformers"))
            print(f"\n{dtype_name}: logits agree to {agreement:.1e}")
            for name, median in medians.items():
                print(f"  {name:<36} {BATCH / median:8.1f} seq/s  ({median * 1e3:7.1f} ms/batch)  "
                      f"x{medians[baseline] / median:.2f} vs {baseline}")
            for name, note in notes.items():
                print(f"  {name}: {note}")
            del models


if __name__ == "__main__":
    main()
