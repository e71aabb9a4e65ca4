"""Why weight-only int8 goes through FBGEMM's integer kernel (pt/quantize.py): the int8 weights of
CodeGen-350M's linear layers (20 x qkv 3072x1024, out 1024x1024, fc_in 4096x1024, fc_out 1024x4096:
252 MB, more than the caches), multiplied by 1 and by 8 rows in model order, per kernel.

    PYTHONPATH=. .venv/bin/python benchmarks/int8_kernels.py [--threads 2] [--reps 7]

Kernels: torch's `_weight_int8pack_mm` on bfloat16 rows (what the layer used before); polyformer's
`Int8WeightOnlyLinear` (14-bit rows as two 7-bit halves, one FBGEMM call: the whole layer, eager, and its
integer product alone on the 2 x rows halves); `Int8DynamicActivationLinear` (7-bit rows, FBGEMM's
`linear_dynamic`). Prints the median time of one pass over all weights and the int8 bytes read per second.
Needs no reference library; timings never go into the tests.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as nn

from polyformer.pt.quantize import Int8DynamicActivationLinear, Int8WeightOnlyLinear

SHAPES = [(3072, 1024), (1024, 1024), (4096, 1024), (1024, 4096)]
LAYERS = 20


def kernels(linears):
    weight_only = [Int8WeightOnlyLinear(linear) for linear in linears]
    dynamic = [Int8DynamicActivationLinear(linear) for linear in linears]
    plain = [(layer.dequantized().div(layer.weight_scale[:, None]).round().to(torch.int8),
              layer.weight_scale.to(torch.bfloat16)) for layer in weight_only]
    yield "aten._weight_int8pack_mm (bfloat16 rows)", [
        (lambda x, w=w, s=s: torch.ops.aten._weight_int8pack_mm(x.to(torch.bfloat16), w, s)) for w, s in plain]
    yield "Int8WeightOnlyLinear (whole layer, eager)", weight_only
    yield "Int8WeightOnlyLinear's FBGEMM call (2 x rows)", [
        (lambda x, layer=layer: layer.run(torch.cat([x, x]).round_().clamp_(-64, 63))) for layer in weight_only]
    yield "Int8DynamicActivationLinear (whole layer, eager)", dynamic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    linears = [nn.Linear(k, n, bias=False) for _ in range(LAYERS) for n, k in SHAPES]
    size = sum(linear.weight.numel() for linear in linears)  # int8: one byte each
    print(f"CPU capability {torch.backends.cpu.get_cpu_capability()}, {args.threads} threads, {size / 1e6:.0f} MB of int8")
    print("| kernel | rows | ms per pass | GB/s |\n|---|---|---|---|")
    for name, layers in kernels(linears):
        for rows in (1, 8):
            inputs = {k: torch.randn(rows, k) * 30 for k in (1024, 4096)}
            calls = [(layer, inputs[linear.in_features]) for layer, linear in zip(layers, linears)]
            times = []
            with torch.inference_mode():
                for _ in range(args.reps + 1):
                    start = time.perf_counter()
                    for layer, x in calls:
                        layer(x)
                    times.append(time.perf_counter() - start)
            median = statistics.median(times[1:])
            print(f"| {name} | {rows} | {median * 1e3:.1f} | {size / median / 1e9:.1f} |")


if __name__ == "__main__":
    main()
