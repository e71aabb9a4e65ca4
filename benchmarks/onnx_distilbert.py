"""DistilBertForSequenceClassification forward throughput: onnxruntime (the graph of `polyformer export onnx`)
vs polyformer, one process, float32, on the workload of benchmarks/distilbert_seqcls.py.

Run it alone on the machine, in a venv with onnxruntime (pip install 'polyformer[onnx]'):

    python benchmarks/onnx_distilbert.py [--reps 30] [--threads 2]

Setup: random base-size weights (DistilBertConfig() defaults), saved once and exported with
`polyformer.onnx_export.export_onnx`; a batch of 8 x 128 token ids with rows of 128 down to 77 tokens
(attention_mask zeros at the end of rows); eval mode, `torch.inference_mode()`, both runtimes limited to
`threads` intra-op threads. Every runtime is warmed up, then repetitions are interleaved and the median
time per batch is reported as sequences per second, with the ratio against polyformer's default (sdpa).
The logits of both are checked to agree to 1e-4 first.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from polyformer import DistilBertConfig, DistilBertForSequenceClassification
from polyformer.onnx_export import export_onnx

BATCH, SEQ = 8, 128


def make_inputs(seed: int = 0) -> dict:
    """benchmarks/distilbert_seqcls.py's batch: (8, 128) ids, row lengths 128 -> 77, right padding."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.linspace(SEQ, 77, BATCH).round().long()
    mask = (torch.arange(SEQ)[None, :] < lengths[:, None]).long()
    return {"input_ids": torch.randint(1000, 30000, (BATCH, SEQ), generator=g) * mask, "attention_mask": mask}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    inputs = make_inputs()
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        DistilBertForSequenceClassification(DistilBertConfig()).save_pretrained(Path(tmp) / "model")
        (graph,) = export_onnx(Path(tmp) / "model", Path(tmp) / "onnx", "text-classification")
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
        session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        model = DistilBertForSequenceClassification.from_pretrained(Path(tmp) / "model").eval()
    feeds = {k: v.numpy() for k, v in inputs.items()}

    def polyformer_run():
        with torch.inference_mode():
            return model(**inputs).logits.numpy()

    runs = {"polyformer (sdpa)": polyformer_run, "onnxruntime": lambda: session.run(None, feeds)[0]}
    reference = polyformer_run()
    np.testing.assert_allclose(runs["onnxruntime"](), reference, atol=1e-4, rtol=1e-4)
    for run in runs.values():  # warm-up
        for _ in range(3):
            run()
    times = {name: [] for name in runs}
    for rep in range(args.reps):
        names = list(runs)[rep % len(runs):] + list(runs)[:rep % len(runs)]
        for name in names:
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["polyformer (sdpa)"])
    print(f"DistilBertForSequenceClassification, float32, batch {BATCH} x {SEQ}, {args.threads} threads, "
          f"{args.reps} reps (median)")
    for name, ts in times.items():
        median = statistics.median(ts)
        print(f"  {name:20s} {BATCH / median:8.1f} seq/s   x{base / median:.2f}")


if __name__ == "__main__":
    main()
