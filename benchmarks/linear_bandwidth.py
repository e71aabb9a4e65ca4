"""How fast one decoding step's matrix-vector products can go: the weights of CodeGen-350M's linear layers
(20 x qkv 3072x1024, out 1024x1024, fc_in 4096x1024, fc_out 1024x4096, lm_head 51200x1024: 1.22 GB in
float32, 0.61 GB in bfloat16, more than the caches), each multiplied by one row in model order, per kernel.

    PYTHONPATH=. .venv/bin/python benchmarks/linear_bandwidth.py [--threads 2] [--reps 7]

Prints, per dtype and kernel, the median time of one pass over all weights, the bytes read per second,
and the tokens per second that a decoder doing nothing else would reach: the ceiling of
benchmarks/codegen_decode.py. Needs no reference library.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

SHAPES = [(3072, 1024, False), (1024, 1024, False), (4096, 1024, True), (1024, 4096, True)]
LAYERS, VOCAB, WIDTH = 20, 51200, 1024


def weights(dtype):
    out = [(torch.randn(o, i, dtype=dtype) * 0.02, torch.randn(o, dtype=dtype) if bias else None)
           for _ in range(LAYERS) for o, i, bias in SHAPES]
    return out + [(torch.randn(VOCAB, WIDTH, dtype=dtype) * 0.02, torch.randn(VOCAB, dtype=dtype))]


def kernels(dtype):
    def addmv(x, w, b):
        return torch.mv(w, x.view(-1)) if b is None else torch.addmv(b, w, x.view(-1))

    yield "F.linear", (lambda w: w), (lambda x, w, b: F.linear(x, w, b))
    yield "addmv", (lambda w: w), addmv
    if dtype == torch.bfloat16 and torch.backends.mkldnn.is_available():
        yield ("oneDNN prepacked", lambda w: torch.ops.mkldnn._reorder_linear_weight(w, 1),
               lambda x, w, b: torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for dtype in (torch.float32, torch.bfloat16):
        plain = weights(dtype)
        size = sum(w.numel() * w.element_size() for w, _ in plain)
        inputs = {i: torch.randn(1, 1, i, dtype=dtype) for i in (1024, 4096)}
        for name, prepare, kernel in kernels(dtype):
            layers = [(prepare(w), b, inputs[w.shape[1]]) for w, b in plain]
            with torch.inference_mode():
                times = []
                for _ in range(args.reps + 1):
                    start = time.perf_counter()
                    for w, b, x in layers:
                        kernel(x, w, b)
                    times.append(time.perf_counter() - start)
            t = statistics.median(times[1:])
            print(f"{str(dtype)[6:]:9s} {name:20s} {t * 1e3:6.1f} ms/pass  {size / t / 1e9:5.1f} GB/s  "
                  f"ceiling {1 / t:5.1f} tokens/s")
            del layers


if __name__ == "__main__":
    main()
