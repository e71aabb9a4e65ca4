"""`from_pretrained(..., from_flax=True)` on the PyTorch classes: flax_model.msgpack files saved by
transformers 4.37.2's Flax classes (tests/fixtures/flax, scripts/fixtures/make_flax_fixtures.py) load into
the PyTorch models, which then give the outputs the reference's Flax models gave on the same inputs."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("flax")

from helpers.parity import assert_same, load_cases  # noqa: E402
from polyformer import DistilBertForMaskedLM, DistilBertModel, GPTJForCausalLM  # noqa: E402

CASES = {("distilbert", "masked_lm_msgpack"): DistilBertForMaskedLM}


def flax_cases():
    for (family, name), cls in CASES.items():
        for case in load_cases(f"flax/{family}", where=lambda c, name=name: c.dir.name == name):
            yield pytest.param(cls, case, id=case.id)


@pytest.mark.parametrize("cls,case", list(flax_cases()))
def test_flax_checkpoint_gives_the_reference_outputs(cls, case):
    model = cls.from_pretrained(case.checkpoint, from_flax=True)
    inputs = {k: torch.as_tensor(v.numpy() if hasattr(v, "numpy") else v) for k, v in case.inputs().items()}
    with torch.no_grad():
        output = model(**inputs, **case.kwargs)
    for name, expected in case.expected().items():
        assert_same(getattr(output, name), expected, name=f"{case}: {name}")  # XLA sums in other orders: still 1e-5


def test_round_trip_through_flax(tmp_path):
    """A PyTorch model saved as Flax (polyformer's FlaxGPTJ from_pt) comes back equal, dtypes kept."""
    from polyformer import FlaxGPTJForCausalLM, GPTJConfig

    config = GPTJConfig(vocab_size=64, n_positions=32, n_embd=32, n_layer=2, n_head=4, rotary_dim=4)
    torch.manual_seed(0)
    model = GPTJForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(tmp_path / "pt")
    FlaxGPTJForCausalLM.from_pretrained(tmp_path / "pt", from_pt=True, dtype="bfloat16").save_pretrained(tmp_path / "flax")
    again = GPTJForCausalLM.from_pretrained(tmp_path / "flax", from_flax=True, torch_dtype="auto")
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    assert again.dtype == torch.bfloat16


def test_missing_msgpack(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "distilbert"}')
    with pytest.raises(FileNotFoundError, match="flax_model.msgpack"):
        DistilBertModel.from_pretrained(tmp_path, from_flax=True)


def test_without_flax_installed(tmp_path, monkeypatch):
    import sys

    (tmp_path / "config.json").write_text('{"model_type": "distilbert"}')
    monkeypatch.setitem(sys.modules, "polyformer.jx.modeling", None)  # as if jax / flax were missing
    with pytest.raises(ImportError, match=r"from_flax=True needs jax and flax.*polyformer\[flax\]"):
        DistilBertModel.from_pretrained(tmp_path, from_flax=True)
