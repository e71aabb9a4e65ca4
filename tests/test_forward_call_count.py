"""Indirection, counted: one forward pass of GPTJForCausalLM, LlamaForCausalLM and MvpForConditionalGeneration
calls no more distinct functions of polyformer's own code than transformers 4.37.2 calls of its own for the
same classes (issue 17). A count, not a timing: it is the same on every machine.

The measurement is benchmarks/count_forward_calls.py (`sys.setprofile`, every code object called whose file
lies in the package folder, one forward after a warm-up, tiny random configs, batch 2 x 7 tokens with a
left-padded row, eval, no cache passed). Run it with `--list` to see which functions a count holds.
"""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "count_forward_calls.py"
_spec = importlib.util.spec_from_file_location("count_forward_calls", SCRIPT)
count_forward_calls = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(count_forward_calls)

# transformers 4.37.2's counts, measured 2026-12-07 with
#   .refvenv/bin/python benchmarks/count_forward_calls.py --library transformers
# (the script's `--reference .refvenv/bin/python` prints them beside polyformer's). With an all-ones
# attention mask Llama's is 30 (no padding: no mask-unmasking helpers); the other two do not change.
REFERENCE = {"GPTJForCausalLM": 30, "LlamaForCausalLM": 34, "MvpForConditionalGeneration": 35}


@pytest.mark.parametrize("class_name", sorted(REFERENCE))
def test_one_forward_calls_no_more_functions_than_the_reference(class_name):
    called = count_forward_calls.called_functions("polyformer", class_name)
    assert len(called) <= REFERENCE[class_name], (
        f"{class_name}: one forward calls {len(called)} distinct polyformer functions, transformers 4.37.2 "
        f"{REFERENCE[class_name]}:\n  " + "\n  ".join(called))
