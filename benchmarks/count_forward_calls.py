"""How many distinct Python functions of the library itself one forward pass calls (a measure of
indirection, not of speed), for GPTJForCausalLM, LlamaForCausalLM and MvpForConditionalGeneration.

For each class: a tiny random model (the same config and seed in both libraries), `eval()`, one warm-up
forward, then one forward of input_ids + attention_mask (batch 2, 7 tokens, the second row left-padded by
2; no cache passed, default use_cache, under torch.no_grad) with `sys.setprofile` recording every code
object called whose file lies inside the library's package folder (functions, methods, generator
expressions, lambdas; torch's own code does not count). Prints a table; `--list` names the functions.

    PYTHONPATH=. .venv/bin/python benchmarks/count_forward_calls.py [--reference .refvenv/bin/python] [--list]

With `--reference PYTHON`, the same script runs under that interpreter (a venv with transformers 4.37.2)
as `--library transformers --json`, and its counts fill the reference column. polyformer never imports
transformers: the reference runs in its own process.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys

CLASSES = {  # class -> (config class, tiny config)
    "GPTJForCausalLM": ("GPTJConfig", dict(vocab_size=99, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                           rotary_dim=4)),
    "LlamaForCausalLM": ("LlamaConfig", dict(vocab_size=99, hidden_size=32, intermediate_size=37,
                                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                             max_position_embeddings=64)),
    "MvpForConditionalGeneration": ("MvpConfig", dict(vocab_size=99, d_model=32, encoder_layers=2, decoder_layers=2,
                                                      encoder_attention_heads=4, decoder_attention_heads=4,
                                                      encoder_ffn_dim=37, decoder_ffn_dim=37,
                                                      max_position_embeddings=64)),
}


def called_functions(library: str, class_name: str) -> list:
    """The library's own functions one forward of `class_name` calls, as sorted 'file:line name' strings."""
    import torch

    lib = importlib.import_module(library)
    folder = os.path.dirname(os.path.abspath(lib.__file__)) + os.sep
    config_name, options = CLASSES[class_name]
    torch.manual_seed(0)
    model = getattr(lib, class_name)(getattr(lib, config_name)(**options)).eval()
    input_ids = torch.randint(3, 99, (2, 7))
    attention_mask = torch.ones(2, 7, dtype=torch.long)
    attention_mask[1, :2] = 0
    seen = set()

    def record(frame, event, arg):
        if event == "call" and frame.f_code.co_filename.startswith(folder):
            seen.add(frame.f_code)

    with torch.no_grad():
        model(input_ids=input_ids, attention_mask=attention_mask)  # warm-up: lazy imports, caches
        sys.setprofile(record)
        try:
            model(input_ids=input_ids, attention_mask=attention_mask)
        finally:
            sys.setprofile(None)
    return sorted(f"{os.path.relpath(c.co_filename, folder)}:{c.co_firstlineno} {c.co_name}" for c in seen)


def count_all(library: str) -> dict:
    return {name: called_functions(library, name) for name in CLASSES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", default="polyformer", help="the package to measure (default polyformer)")
    parser.add_argument("--reference", metavar="PYTHON", help="an interpreter with transformers 4.37.2")
    parser.add_argument("--list", action="store_true", help="name each function called")
    parser.add_argument("--json", action="store_true", help="print {class: [functions]} as JSON only")
    args = parser.parse_args()
    ours = count_all(args.library)
    if args.json:
        print(json.dumps(ours))
        return
    reference = {}
    if args.reference:
        done = subprocess.run([args.reference, os.path.abspath(__file__), "--library", "transformers", "--json"],
                              capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": ""})
        reference = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"| class | {args.library} | transformers 4.37.2 |")
    print("|---|---|---|")
    for name in CLASSES:
        ref = str(len(reference[name])) if name in reference else "-"
        print(f"| {name} | {len(ours[name])} | {ref} |")
    if args.list:
        for label, counts in ((args.library, ours), ("transformers", reference)):
            for name, functions in counts.items():
                print(f"\n{label} {name} ({len(functions)}):")
                print("\n".join("  " + f for f in functions))


if __name__ == "__main__":
    main()
