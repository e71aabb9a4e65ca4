"""Greedy decoding speed of CodeGen-350M's shape: polyformer vs transformers 4.37.2, one process.

Run with the reference venv's python and the repo on the path, so both libraries import:

    PYTHONPATH=. .refvenv/bin/python benchmarks/codegen_decode.py [--reps 3] [--threads 2] [--dtypes float32,bfloat16]

Setup: random weights of CodeGen-350M's shape (n_layer 20, n_embd 1024, n_head 16, rotary_dim 32,
vocab 51200), made and saved once by transformers and loaded by both libraries in each dtype; batch 1,
a 32-token prompt, 128 new tokens, greedy (`min_new_tokens=128` so both run all 128 steps),
`torch.set_num_threads(threads)`, `torch.inference_mode()`. Each (library, dtype) is warmed up with one
short generate, then repetitions are interleaved and the median is reported as new tokens per second,
with the ratio against the reference in the same dtype. polyformer runs twice: eager and with
`generate(compile=True)` (its decoding step through torch.compile; compiled in the warm-up). The generated
ids are compared first.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time

import torch
from tqdm.auto import tqdm

import polyformer
import transformers

PROMPT, NEW = 32, 128
SHAPE = dict(n_layer=20, n_embd=1024, n_head=16, rotary_dim=32, vocab_size=51200, n_positions=2048, n_ctx=2048,
             bos_token_id=1, eos_token_id=2, pad_token_id=0)


class Compiled:
    """A polyformer model whose generate() runs the compiled decoding step."""

    def __init__(self, model):
        self.model = model

    def generate(self, *args, **kwargs):
        return self.model.generate(*args, compile=True, **kwargs)


def decode(model, ids: torch.Tensor, new_tokens: int) -> tuple[float, torch.Tensor]:
    with torch.inference_mode():
        start = time.perf_counter()
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                             min_new_tokens=new_tokens, do_sample=False, num_beams=1, pad_token_id=0)
        return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ids = torch.randint(3, SHAPE["vocab_size"], (1, PROMPT))

    with tempfile.TemporaryDirectory() as folder:
        reference = transformers.CodeGenForCausalLM(transformers.CodeGenConfig(**SHAPE))
        reference.save_pretrained(folder)
        del reference
        models = {}
        for name in args.dtypes.split(","):
            dtype = getattr(torch, name)
            models[("transformers " + transformers.__version__, name)] = (
                transformers.CodeGenForCausalLM.from_pretrained(folder, torch_dtype=dtype).eval())
            ours = polyformer.CodeGenForCausalLM.from_pretrained(folder, torch_dtype=dtype)
            models[("polyformer " + polyformer.__version__, name)] = ours
            models[("polyformer, compiled", name)] = Compiled(ours)

        outputs = {}
        for key, model in models.items():
            decode(model, ids, 8)  # warm-up
            outputs[key] = decode(model, ids, NEW)[1]
        for name in args.dtypes.split(","):
            ref, *ours = (outputs[k] for k in outputs if k[1] == name)
            same = all(torch.equal(ref, o) for o in ours)
            first = min((int((ref != o).int().argmax()) for o in ours if not torch.equal(ref, o)), default=0)
            print(f"{name}: generated ids {'identical' if same else 'DIFFER'}"
                  + ("" if same else f" (first difference at new token {first - PROMPT})"))

        times = {key: [] for key in models}
        for rep in tqdm(range(args.reps), desc="repetitions", unit="rep"):
            keys = list(models)
            for key in keys[rep % len(keys):] + keys[: rep % len(keys)]:
                times[key].append(decode(models[key], ids, NEW)[0])

    print(f"\nCodeGen-350M shape, greedy, batch 1, prompt {PROMPT}, {NEW} new tokens, torch {torch.__version__}, "
          f"{args.threads} threads on {platform.processor() or platform.machine()}, median of {args.reps}")
    for (library, dtype), ts in times.items():
        tps = NEW / statistics.median(ts)
        ref = NEW / statistics.median(next(t for (lib, d), t in times.items() if d == dtype and "transformers" in lib))
        print(f"  {library:22s} {dtype:9s} {tps:6.1f} tokens/s   x{tps / ref:.2f} vs transformers {dtype}")


if __name__ == "__main__":
    main()
