"""Parity harness for the Flax classes: the fixtures of tests/fixtures/flax/ (written by
scripts/fixtures/make_flax_fixtures.py with transformers 4.37.2's Flax classes), checked with the
comparisons of parity.py (1e-5, field order, tuple layout) on jax outputs converted to torch.

Cache calls: the "cache" collection is compared as a tuple per layer (cached_key, cached_value,
cache_index); a call with ``init_cache`` starts from ``model.init_cache(*init_cache)``, one with
``after`` from the cache the named call returned.
"""

from __future__ import annotations

import functools
import os

# The test models are tiny, so XLA's compile time dominates these tests (~40 compiles); LLVM's optimisation
# passes cost a third of it and buy nothing here. Read when jax first computes, so setting it on import works
# (added to flags already set, such as the AVX2 rerun's --xla_cpu_max_isa).
if "--xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()

import numpy as np
import torch

from .parity import Case, assert_output, assert_tuple


def to_torch(value):
    """jax / numpy arrays (nested in tuples) -> torch tensors."""
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return tuple(to_torch(v) for v in value)
    return torch.from_numpy(np.array(value, ndmin=1))  # the fixtures store 0-d arrays (cache_index) as (1,)


def cache_tuple(cache) -> tuple:
    blocks = cache["transformer"]["h"] if "transformer" in cache else cache["h"]
    return tuple((b["attn"]["cached_key"], b["attn"]["cached_value"], b["attn"]["cache_index"])
                 for _, b in sorted(blocks.items(), key=lambda kv: int(kv[0])))


def comparable(output):
    """An output (object or tuple) with torch values and the cache as a tuple per layer."""
    if isinstance(output, tuple):
        return tuple(to_torch(cache_tuple(v) if isinstance(v, dict) else v) for v in output)
    copy = type(output)()
    for key, value in output.items():
        copy[key] = to_torch(cache_tuple(value) if key == "past_key_values" else value)
    return copy


@functools.lru_cache(maxsize=None)
def load(model_cls, checkpoint: str, load_kwargs: str = "{}"):
    import json

    return model_cls.from_pretrained(checkpoint, **json.loads(load_kwargs))


def model_for(model_cls, case: Case):
    import json

    return load(model_cls, str(case.checkpoint), json.dumps(case.load_kwargs, sort_keys=True))


def numpy_inputs(case: Case) -> dict:
    return {k: v.numpy() for k, v in case.inputs().items()}


def run(model, case: Case, cases: dict, **overrides):
    """The case's call on `model` (its cache set up as recorded), return_dict as `overrides` say."""
    past = {}
    if "init_cache" in case.spec:
        past = {"past_key_values": model.init_cache(*case.spec["init_cache"])}
    elif "after" in case.spec:
        before = cases[case.spec["after"]]
        past = {"past_key_values": run(model, before, cases, return_dict=True)["past_key_values"]}
    return model(**numpy_inputs(case), **past, **{**case.kwargs, **overrides})


def check_flax_case(model_cls, case: Case, cases: dict) -> None:
    """Outputs as recorded, with return_dict=True and with return_dict=False, equal to the reference's."""
    model = model_for(model_cls, case)
    output = comparable(run(model, case, cases))
    (assert_tuple if case.spec["returns"] == "tuple" else assert_output)(output, case)
    assert_output(comparable(run(model, case, cases, return_dict=True)), case)
    assert_tuple(comparable(run(model, case, cases, return_dict=False)), case)


def max_diff(output, case: Case) -> float:
    """Largest absolute difference to the reference over every recorded field (for reports)."""
    expected = case.expected()
    got = comparable(output)

    def walk(a, b):
        if isinstance(b, tuple):
            return max((walk(x, y) for x, y in zip(a, b)), default=0.0)
        return (a.double() - b.double()).abs().max().item() if b.numel() else 0.0

    return max(walk(got[k], v) for k, v in expected.items())
