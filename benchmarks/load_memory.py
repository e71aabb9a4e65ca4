"""Peak anonymous memory of `from_pretrained`: polyformer against transformers 5.23, float32 checkpoint.

    .benchvenv/bin/python benchmarks/load_memory.py [--libraries polyformer,transformers] [--dtypes float32,bfloat16]

A random model of CodeGen-350M's shape (n_layer 20, n_embd 1024, vocab 51200) is saved once by
transformers (float32 safetensors). Each (library, dtype) then runs in a fresh subprocess, which first
loads a tiny CodeGen with the same library and dtype and drops it (so imports and torch's one-time
initialisation are not counted), then waits; a thread of this (parent) process samples the child's RssAnon
(/proc/<pid>/status) every 1 ms while the child runs `from_pretrained(folder, <dtype>)` -- sampling from
outside so that a loader holding the GIL cannot hide a peak. Reported: the peak and the resident growth
after loading over the child's baseline, as ratios:

- float32 -> float32: growth / file size (a memory-mapped load that keeps the file's pages as the
  weights needs ~0: those pages are file-backed, not anonymous);
- float32 -> bfloat16: growth / converted size (the bfloat16 weights themselves must be anonymous: ~1.0
  at best).

File-backed pages (the page cache of the checkpoint) are not counted. Runs in about a minute.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List

logger = logging.getLogger("load_memory")

SHAPE = dict(n_layer=20, n_embd=1024, n_head=16, rotary_dim=32, vocab_size=51200, n_positions=2048, n_ctx=2048,
             bos_token_id=1, eos_token_id=2, pad_token_id=0)
TINY = dict(n_layer=1, n_embd=64, n_head=4, rotary_dim=8, vocab_size=1000, n_positions=128, n_ctx=128,
            bos_token_id=1, eos_token_id=2, pad_token_id=0)
LIBRARIES = ("polyformer", "transformers")
DTYPES = ("float32", "bfloat16")


def rss_anon(pid) -> int:
    """RssAnon of a process in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/<pid>/status")


# --- child: one load ----------------------------------------------------------------------------------------

def child(library: str, dtype_name: str, folder: str, tiny: str) -> None:
    import torch

    dtype = getattr(torch, dtype_name)
    if library == "polyformer":
        import polyformer

        def load(path):
            return polyformer.CodeGenForCausalLM.from_pretrained(path, torch_dtype=dtype)
    else:
        import transformers

        def load(path):
            return transformers.CodeGenForCausalLM.from_pretrained(path, dtype=dtype)

    model = load(tiny)  # warm-up: imports, torch's one-time initialisation, the library's first-call work
    del model
    import gc

    gc.collect()
    time.sleep(0.2)
    print(json.dumps({"ready": rss_anon("self")}), flush=True)
    sys.stdin.readline()  # the parent's sampler is running
    model = load(folder)
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    gc.collect()
    print(json.dumps({"done": rss_anon("self"), "params_bytes": params, "buffers_bytes": buffers,
                      "dtype": str(next(model.parameters()).dtype)}), flush=True)
    sys.stdin.readline()  # stay alive until the parent has stopped sampling


# --- parent ---------------------------------------------------------------------------------------------------

class Sampler(threading.Thread):
    def __init__(self, pid: int, period_s: float = 0.001):
        super().__init__(daemon=True)
        self.pid, self.period_s = pid, period_s
        self.peak, self.samples = 0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, rss_anon(self.pid))
                self.samples += 1
            except (OSError, RuntimeError):
                return
            time.sleep(self.period_s)


def measure(library: str, dtype: str, folder: str, tiny: str) -> Dict:
    process = subprocess.Popen([sys.executable, __file__, "--child", library, dtype, folder, tiny],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        baseline = json.loads(process.stdout.readline())["ready"]
        sampler = Sampler(process.pid)
        sampler.start()
        start = time.perf_counter()
        process.stdin.write("go\n")
        process.stdin.flush()
        line = process.stdout.readline()
        seconds = time.perf_counter() - start
        sampler.stop.set()
        sampler.join()
        if not line:
            raise RuntimeError(f"{library} {dtype}: the child process failed")
        done = json.loads(line)
        process.stdin.write("bye\n")
        process.stdin.flush()
    finally:
        process.stdin.close()
        process.wait(timeout=60)
    return {"library": library, "dtype": dtype, "baseline": baseline, "peak": sampler.peak - baseline,
            "after": done["done"] - baseline, "params_bytes": done["params_bytes"], "seconds": seconds,
            "samples": sampler.samples, "loaded_dtype": done["dtype"]}


def version(name: str) -> str:
    import importlib.metadata as md

    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "not installed"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--libraries", default=",".join(LIBRARIES))
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    import torch
    import transformers
    from safetensors import safe_open
    from tqdm.auto import tqdm

    started = datetime.datetime.now()
    results: List[Dict] = []
    with tempfile.TemporaryDirectory(prefix="polyformer-load-") as workdir:
        folder, tiny = os.path.join(workdir, "codegen-350m-random"), os.path.join(workdir, "tiny")
        torch.manual_seed(0)
        transformers.CodeGenForCausalLM(transformers.CodeGenConfig(**SHAPE)).save_pretrained(folder)
        transformers.CodeGenForCausalLM(transformers.CodeGenConfig(**TINY)).save_pretrained(tiny)
        files = [os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".safetensors")]
        file_size = sum(os.path.getsize(f) for f in files)
        numel = 0
        for name in files:
            with safe_open(name, "pt") as f:
                numel += sum(_prod(f.get_slice(k).get_shape()) for k in f.keys())
        logger.info("checkpoint: %d files, %.3f GB, %.1f M values", len(files), file_size / 1e9, numel / 1e6)
        jobs = [(lib, d) for lib in args.libraries.split(",") for d in args.dtypes.split(",")]
        for library, dtype in tqdm(jobs, desc="loads", unit="load"):
            result = measure(library, dtype, folder, tiny)
            logger.info("%s %s: peak +%.2f GB, after +%.2f GB, %.1f s, %d samples", library, dtype,
                        result["peak"] / 1e9, result["after"] / 1e9, result["seconds"], result["samples"])
            results.append(result)

    print()
    print(f"## load_memory.py, {started:%Y-%m-%d %H:%M}")
    print()
    print(f"- torch {torch.__version__}, transformers {version('transformers')}, polyformer {version('polyformer')}; "
          f"checkpoint: CodeGen-350M shape, random, float32 safetensors, {file_size / 1e9:.3f} GB "
          f"({numel / 1e6:.1f} M values; bfloat16: {numel * 2 / 1e9:.3f} GB)")
    print("- RssAnon growth over the child's baseline (after a warm-up load of a tiny model), sampled every 1 ms")
    print()
    print("| library | load | size compared with | peak growth (GB) | after load (GB) | peak / size | after / size | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        name = f"transformers {version('transformers')}" if r["library"] == "transformers" else \
            f"polyformer {version('polyformer')}"
        target = file_size if r["dtype"] == "float32" else numel * 2
        label = "file size" if r["dtype"] == "float32" else "converted (bfloat16) size"
        print(f"| {name} | float32 -> {r['dtype']} | {label}, {target / 1e9:.3f} GB | {r['peak'] / 1e9:.2f} | "
              f"{r['after'] / 1e9:.2f} | {r['peak'] / target:.2f} | {r['after'] / target:.2f} | {r['seconds']:.1f} |")


def _prod(shape) -> int:
    out = 1
    for n in shape:
        out *= n
    return out


if __name__ == "__main__":
    main()
