"""Parity harness for the TensorFlow classes: fixtures under tests/fixtures/tf/<family>/ written by
scripts/fixtures/make_tf_fixtures.py (transformers 4.37.2's TF classes replaying the PyTorch cases).

The cases are parity.py's `Case`s; outputs go to torch through numpy and are compared with parity's
`assert_output` / `assert_tuple` (1e-5, shapes, field order, TF output class names). Calls marked `differs`
(4.37's TF code contradicting its documentation) are left to each family's own tests.
"""

from __future__ import annotations

import builtins
import functools
import json

import numpy as np
import pytest
import torch

from polyformer.outputs import ModelOutput
from polyformer.tf.backend import tf

from .parity import Case, assert_output, assert_tuple, load_cases, params  # noqa: F401  (re-exported)
from .tolerance import assert_close


def tf_cases(family: str, *, differs: bool = False) -> list:
    """The family's TF calls: the parity ones, or (differs=True) those pinned by the family's tests."""
    return load_cases(f"tf/{family}", where=lambda c: bool(c.spec.get("differs")) == differs)


def to_tf(value):
    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return tuple(to_tf(v) for v in value)
    return tf.constant(value.numpy())


def to_torch(value):
    """TF output -> torch: tensors through numpy, nested ModelOutputs as their tuples (the fixtures' form)."""
    if value is None:
        return None
    if isinstance(value, ModelOutput):
        return type(value)(**{k: to_torch(v.to_tuple() if isinstance(v, ModelOutput) else v) for k, v in value.items()})
    if isinstance(value, (tuple, list)):
        return tuple(to_torch(v) for v in value)
    return torch.from_numpy(np.array(value))


@functools.lru_cache(maxsize=None)
def _load(model_cls, checkpoint: str, load_kwargs: str):
    return model_cls.from_pretrained(checkpoint, **json.loads(load_kwargs))


def load_model(model_cls, case: Case):
    """The case's checkpoint (a PyTorch one: converted on load), cached per test session."""
    return _load(model_cls, str(case.checkpoint), json.dumps(case.load_kwargs, sort_keys=True))


def run(model, case: Case, **overrides):
    inputs = {k: to_tf(v) for k, v in case.inputs().items()}
    return to_torch(model(**inputs, **{**case.kwargs, **overrides}))


def check_tf_case(model_cls, case: Case) -> None:
    """The call as recorded, with return_dict=True and with return_dict=False, against the reference."""
    if case.raises:
        error = getattr(builtins, case.raises["type"], Exception)
        with pytest.raises(error):
            run(load_model(model_cls, case), case)
        return
    model = load_model(model_cls, case)
    output = run(model, case)
    (assert_tuple if case.spec["returns"] == "tuple" else assert_output)(output, case)
    assert_output(run(model, case, return_dict=True), case)
    assert_tuple(run(model, case, return_dict=False), case)


def parity_tests(cases: list, models: dict):
    """The two tests every family runs: each recorded call, and the weight names of each checkpoint. Assign
    them to module-level `test_*` names."""
    from .parity import checkpoints

    @pytest.mark.parametrize("case", params(cases))
    def test_parity(case):
        check_tf_case(models[case.model_class], case)

    @pytest.mark.parametrize("case", params(checkpoints(cases)))
    def test_weight_names_are_the_references(case):
        check_weight_names(models[case.model_class], case)

    return test_parity, test_weight_names_are_the_references


def check_weight_names(model_cls, case: Case) -> None:
    """Our variables carry exactly the reference's TF weight names (what tf_model.h5 holds), in any order."""
    from polyformer.tf.convert import named_weights

    model = load_model(model_cls, case)
    facts = case.facts["model"]
    assert sorted(n for n, _ in named_weights(model)) == sorted(n.removesuffix(":0") for n in facts["weight_names"])
    trainable = {id(v) for v in model.trainable_weights}
    names = sorted(n for n, v in named_weights(model) if id(v) in trainable)
    assert names == sorted(n.removesuffix(":0") for n in facts["trainable_weight_names"])


def _cross_entropy(logits: np.ndarray, position: int) -> float:
    logits = logits.astype(np.float64)
    top = logits.max()
    return float(np.log(np.exp(logits - top).sum()) + top - logits[position])


def check_span_qa_clamps(model_cls, case: Case) -> None:
    """4.37's TF span-QA loss fails on positions outside the sequence; as documented they are clamped to
    [0, T] and T is ignored: each example's loss is (start CE + end CE) / 2 over the positions that count."""
    model = load_model(model_cls, case)
    inputs = case.inputs()
    out = model(**{k: to_tf(v) for k, v in inputs.items()}, return_dict=True)
    batch, length = inputs["input_ids"].shape
    expected = []
    for row in range(batch):
        total = 0.0
        for logits, positions in ((out.start_logits, inputs["start_positions"]), (out.end_logits, inputs["end_positions"])):
            position = min(max(int(positions.reshape(-1)[row]), 0), length)
            if position < length:
                total += _cross_entropy(logits.numpy()[row], position)
        expected.append(total / 2)
    assert out.loss.shape == (batch,)
    assert_close(out.loss, np.array(expected, np.float32), name="loss")
