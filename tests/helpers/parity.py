"""Parity harness: compare polyformer models with fixtures written by transformers 4.37.2.

Fixtures live in ``tests/fixtures/<family>/<case>/`` (written by ``scripts/fixtures/make_*_fixtures.py``;
the format is described in ``scripts/fixtures/reference.py``): a checkpoint saved by the reference,
``io.safetensors`` with the inputs and expected outputs, and ``case.json`` describing each named call.
One :class:`Case` is one call on one checkpoint. A family's test file is a few lines::

    from parity import check_case, check_checkpoint, check_training, load_cases, params, training_cases

    CASES = load_cases("distilbert")
    MODELS = {cls.__name__: cls for cls in (DistilBertModel, ...)}

    @pytest.mark.parametrize("case", params(CASES))
    def test_parity(case):
        check_case(MODELS[case.model_class], case)

Numbers are compared by ``tolerance.assert_close``: ``|got - ref| <= 1e-5 + 1e-5 * |ref|`` (NaN equal to
NaN, dtype and shape checked). Every call is checked three ways: as recorded (ModelOutput or tuple), with
``return_dict=True`` (output class name, field names and order, attribute and key access) and with
``return_dict=False`` (the reference's tuple layout).
"""

from __future__ import annotations

import builtins
import copy
import functools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pytest
import torch
from safetensors.torch import load_file

from .tolerance import ATOL, RTOL, assert_close

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@functools.lru_cache(maxsize=None)
def _case_json(case_dir: Path) -> dict:
    return json.loads((case_dir / "case.json").read_text())


@functools.lru_cache(maxsize=None)
def _tensors(case_dir: Path) -> dict[str, torch.Tensor]:
    path = case_dir / "io.safetensors"
    return load_file(str(path)) if path.exists() else {}


def _resolve(structure, tensors: Mapping[str, torch.Tensor]):
    """Key structure (key, list of structures, None) -> tensors (tensor, tuple, None); cloned."""
    if structure is None:
        return None
    if isinstance(structure, str):
        return tensors[structure].clone()
    return tuple(_resolve(s, tensors) for s in structure)


@dataclass(frozen=True)
class Case:
    """One recorded call on one fixture checkpoint."""

    dir: Path
    call: str
    meta: dict = field(compare=False, repr=False)

    @property
    def id(self) -> str:
        return f"{self.dir.name}/{self.call}"

    def __str__(self) -> str:
        return self.id

    @property
    def spec(self) -> dict:
        return self.meta["calls"][self.call]

    @property
    def model_class(self) -> str:
        return self.meta["model_class"]

    @property
    def checkpoint(self) -> Path:
        return (self.dir / self.meta["checkpoint"]).resolve()

    @property
    def facts(self) -> dict:
        return self.meta.get("facts", {})

    @property
    def load_kwargs(self) -> dict:
        return dict(self.spec.get("load_kwargs", {}))

    @property
    def kwargs(self) -> dict:
        return dict(self.spec.get("kwargs", {}))

    @property
    def raises(self) -> dict | None:
        return self.spec.get("raises")

    @property
    def fields(self) -> list[str]:
        """The non-None output fields, in the reference's order."""
        return list(self.spec.get("outputs", {}))

    def with_load_kwargs(self, **load_kwargs: Any) -> "Case":
        """The same call, loading the checkpoint with these extra ``from_pretrained`` arguments."""
        meta = copy.deepcopy(self.meta)
        meta["calls"][self.call]["load_kwargs"] = {**self.load_kwargs, **load_kwargs}
        return Case(self.dir, self.call, meta)

    def inputs(self) -> dict[str, Any]:
        """The tensor inputs, fresh copies."""
        return {k: _resolve(v, _tensors(self.dir)) for k, v in self.spec["inputs"].items()}

    def expected(self) -> dict[str, Any]:
        """Field -> expected tensor or tuple of tensors, in the reference's order."""
        return {k: _resolve(v, _tensors(self.dir)) for k, v in self.spec.get("outputs", {}).items()}


def load_cases(family: str | Path, *, where: Callable[[Case], bool] | None = None) -> list[Case]:
    """Every call of every case under ``tests/fixtures/<family>/`` (or a directory), sorted."""
    root = Path(family) if Path(family).is_absolute() else FIXTURES / family
    cases = [
        Case(d, call, _case_json(d))
        for d in sorted(p.parent for p in root.glob("*/case.json"))
        for call in _case_json(d)["calls"]
    ]
    if not cases:
        raise FileNotFoundError(f"no fixtures under {root}")
    return [c for c in cases if where is None or where(c)]


def params(cases: Iterable[Case]) -> list:
    """``pytest.param`` per case, with readable ids (``<case>/<call>``)."""
    return [pytest.param(c, id=c.id) for c in cases]


def checkpoints(cases: Iterable[Case]) -> list[Case]:
    """The first call of each checkpoint saved in its own directory (with recorded model facts)."""
    seen, out = set(), []
    for c in cases:
        if c.dir not in seen and not c.raises and "model" in c.facts:
            seen.add(c.dir)
            out.append(c)
    return out


def training_cases(cases: Iterable[Case]) -> list[Case]:
    """One call per checkpoint whose recorded loss is finite: inputs that carry labels."""
    seen, out = set(), []
    for c in cases:
        if c.dir in seen or c.raises or "loss" not in c.fields:
            continue
        if math.isfinite(c.expected()["loss"].item()):
            seen.add(c.dir)
            out.append(c)
    return out


# ---------------------------------------------------------------------------------------------------
# Comparing


def assert_same(actual, expected, *, atol: float = ATOL, rtol: float = RTOL, name: str = "output") -> None:
    """Recursive: tensors within ``atol + rtol * |expected|`` (shape and dtype too), tuples by length then
    element."""
    if expected is None:
        assert actual is None, f"{name}: expected None, got {type(actual).__name__}"
        return
    if isinstance(expected, tuple):
        assert isinstance(actual, (tuple, list)), f"{name}: expected a tuple, got {type(actual).__name__}"
        assert len(actual) == len(expected), f"{name}: length {len(actual)} != {len(expected)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, atol=atol, rtol=rtol, name=f"{name}[{i}]")
        return
    assert isinstance(actual, torch.Tensor), f"{name}: expected a tensor, got {type(actual).__name__}"
    assert actual.shape == expected.shape, f"{name}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert_close(actual, expected, atol=atol, rtol=rtol, name=name)


def assert_output(output, case: Case) -> None:
    """A ModelOutput: class name, non-None fields in order, attribute and key access."""
    assert not isinstance(output, tuple), f"{case}: expected {case.spec['output_class']}, got a tuple"
    assert type(output).__name__ == case.spec["output_class"], \
        f"{case}: output class {type(output).__name__} != {case.spec['output_class']}"
    expected = case.expected()
    if hasattr(output, "keys"):
        assert list(output.keys()) == list(expected), f"{case}: fields {list(output.keys())} != {list(expected)}"
    for name, value in expected.items():
        assert_same(getattr(output, name), value, name=f"{case}: {name}")
        if hasattr(output, "keys"):
            assert_same(output[name], value, name=f"{case}: [{name!r}]")


def assert_tuple(output, case: Case) -> None:
    """A ``return_dict=False`` tuple: the reference's length and field order."""
    assert isinstance(output, tuple), f"{case}: expected a tuple, got {type(output).__name__}"
    layout = case.spec["tuple_fields"]
    assert len(output) == len(layout), f"{case}: tuple of {len(output)}, reference has {len(layout)}: {layout}"
    expected = case.expected()
    for i, name in enumerate(layout):
        assert_same(output[i], expected[name], name=f"{case}: tuple[{i}] ({name})")


# ---------------------------------------------------------------------------------------------------
# Running


def load_model(model_cls, case: Case, **overrides):
    """``model_cls.from_pretrained(<checkpoint>, **load_kwargs)``, in eval mode."""
    model = model_cls.from_pretrained(str(case.checkpoint), **{**case.load_kwargs, **overrides})
    return model.eval()


def run(model, case: Case, **overrides):
    """Call ``model`` on the case's inputs and kwargs, without gradients."""
    with torch.no_grad():
        return model(**case.inputs(), **{**case.kwargs, **overrides})


def check_case(model_cls, case: Case) -> None:
    """Load the checkpoint with ``model_cls`` and check the call against the reference."""
    if case.raises:
        error = getattr(builtins, case.raises["type"], Exception)
        with pytest.raises(error, match=re.escape(case.raises["message"])):
            run(load_model(model_cls, case), case)
        return
    model = load_model(model_cls, case)
    output = run(model, case)
    if case.spec["returns"] == "tuple":
        assert_tuple(output, case)
    else:
        assert_output(output, case)
    assert_output(run(model, case, return_dict=True), case)
    assert_tuple(run(model, case, return_dict=False), case)


def check_checkpoint(model_cls, case: Case, tmp_path: Path) -> None:
    """State-dict keys, tied and frozen parameters match the reference; ``save_pretrained`` writes
    files that load back to the same outputs and hold only reference keys (at least those the
    reference itself writes)."""
    facts = case.facts["model"]
    model = load_model(model_cls, case)
    state = model.state_dict()
    assert sorted(state) == sorted(facts["state_dict_keys"]), "state-dict keys differ from the reference"
    groups = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        groups.setdefault(param.data_ptr(), []).append(name)
    tied = sorted(sorted(g) for g in groups.values() if len(g) > 1)
    assert tied == sorted(sorted(g) for g in facts["tied_parameters"]), "tied parameters differ"
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert sorted(frozen) == sorted(facts["frozen_parameters"]), "frozen parameters differ"

    model.save_pretrained(str(tmp_path))
    written = set()
    for path in tmp_path.glob("*.safetensors"):
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            written.update(f.keys())
    reference_written = {k for keys in case.facts.get("saved_keys", {}).values() for k in keys}
    assert written, "save_pretrained wrote no safetensors file"
    unknown = written - set(facts["state_dict_keys"])
    assert not unknown, f"keys the reference does not have were saved: {sorted(unknown)}"
    missing = reference_written - written
    if any(name.endswith(".safetensors") for name in case.facts.get("saved_keys", {})):
        assert not missing, f"keys the reference saves are missing: {sorted(missing)}"
    reloaded = model_cls.from_pretrained(str(tmp_path), **case.load_kwargs).eval()
    output = run(reloaded, case)
    if case.spec["returns"] == "tuple":
        assert_tuple(output, case)
    else:
        assert_output(output, case)


def check_training(model_cls, case: Case, *, lr: float = 1e-3, seed: int = 0) -> None:
    """One training step on the case's labelled inputs: a finite loss, finite gradients on every
    trainable parameter, and an Adam step that moves every parameter with a non-zero gradient."""
    torch.manual_seed(seed)
    model = model_cls.from_pretrained(str(case.checkpoint), **case.load_kwargs)
    model.train()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    assert trainable, "no trainable parameters"
    loss = model(**case.inputs(), **{**case.kwargs, "return_dict": True}).loss
    assert loss is not None and loss.requires_grad, "no differentiable loss"
    assert torch.isfinite(loss), f"loss is {loss.item()}"
    loss.backward()
    no_grad = [n for n, p in trainable.items() if p.grad is None]
    assert not no_grad, f"parameters without gradient: {no_grad}"
    bad = [n for n, p in trainable.items() if not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad}"
    live = {n for n, p in trainable.items() if p.grad.abs().max() > 0}
    assert len(live) >= 0.9 * len(trainable), f"zero gradients: {sorted(set(trainable) - live)}"

    before = {n: p.detach().clone() for n, p in trainable.items()}
    torch.optim.Adam(trainable.values(), lr=lr).step()
    unchanged = sorted(n for n in live if torch.equal(before[n], trainable[n].detach()))
    assert not unchanged, f"parameters not updated by the optimizer step: {unchanged}"
    frozen_with_grad = [n for n, p in model.named_parameters() if not p.requires_grad and p.grad is not None]
    assert not frozen_with_grad, f"frozen parameters received a gradient: {frozen_with_grad}"


# ---------------------------------------------------------------------------------------------------
# Decoders: past_key_values as the reference's tuple, a DynamicCache or a StaticCache


def cache_cases(cases: Iterable[Case]) -> list[Case]:
    """The calls that return past_key_values (with or without a past given)."""
    return [c for c in cases if not c.raises and "past_key_values" in c.fields]


def check_cache_forms(model_cls, case: Case) -> None:
    """The call again with its past (or, with none, an empty cache) as a DynamicCache and as a
    StaticCache: the Cache object itself returned, its contents equal to the reference's past_key_values,
    and every output equal to the legacy-tuple call: exactly for the DynamicCache (the tuple is read into
    one: the same operations on the same shapes), within the tolerances for the StaticCache (attention
    reads its longer, masked buffers: another kernel shape, so another summation order on some CPUs)."""
    from polyformer.pt.cache import DynamicCache, StaticCache

    model = load_model(model_cls, case)
    expected_past = case.expected()["past_key_values"]
    with torch.no_grad():
        legacy = model(**case.inputs(), **{**case.kwargs, "return_dict": True})
    batch, heads, length, head_dim = expected_past[0][0].shape
    for name in ("dynamic", "static"):
        inputs = case.inputs()
        past = inputs.pop("past_key_values", None)
        if name == "dynamic":
            cache = DynamicCache.from_legacy(past, len(expected_past))
        else:
            cache = StaticCache(len(expected_past), batch, heads, head_dim, length + 3, dtype=expected_past[0][0].dtype)
            for i, (k, v) in enumerate(past or ()):
                cache.update(i, k, v)
        with torch.no_grad():
            out = model(**inputs, past_key_values=cache, **{**case.kwargs, "return_dict": True})
        assert out.past_key_values is cache, f"{case} ({name}): the Cache given is not the one returned"
        for field in case.fields:
            if field != "past_key_values":
                exact = {"atol": 0, "rtol": 0} if name == "dynamic" else {}
                assert_same(getattr(out, field), getattr(legacy, field), **exact, name=f"{case} ({name}): {field}")
        assert cache.seen == length, f"{case} ({name}): cache.seen {cache.seen} != {length}"
        assert_same(cache.to_legacy(), expected_past, name=f"{case} ({name}): past_key_values")
