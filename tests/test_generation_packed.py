"""pack_linears_ (pt/packing.py): linear weights held in oneDNN's layout give the reference's ids and scores.

Packed layers run another kernel (another summation order) than `F.linear`, so values are compared with
the fixtures' tolerance, and ids exactly only on the recorded generate fixtures, whose greedy steps hold
no near-tie (test_generation_decoders.py::test_recorded_greedy_steps_hold_no_near_tie).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file

import polyformer
from helpers.parity import assert_output, assert_tuple, load_cases, load_model, params, run
from helpers.tolerance import assert_close
from polyformer import pack_linears_
from polyformer.pt.packing import PackedLinear, is_packed

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FAMILIES = ["codegen/generate", "gptj/generate", "llama/generate", "mvp/generate_prompt"]


def _generate_fixture(family: str):
    folder = FIXTURES / family
    meta = json.loads((folder / "generate.json").read_text())
    model = getattr(polyformer, meta["model_class"]).from_pretrained(str((folder / meta["checkpoint"]).resolve()))
    return model, meta, load_file(str(folder / "scores.safetensors"))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", ["greedy_scores", "beam_return_2"])
def test_packed_model_generates_the_references_ids_and_scores(family, name):
    model, meta, scores = _generate_fixture(family)
    pack_linears_(model)
    assert is_packed(model) and not any(type(m) is nn.Linear for m in model.modules())
    run_ = meta["runs"][name]
    inputs = {k: torch.tensor(v) for k, v in meta["inputs"].items()}
    out = model.generate(**inputs, **run_["kwargs"])
    assert out.sequences.tolist() == run_["sequences"]
    if "sequences_scores" in run_:
        assert_close(out.sequences_scores, torch.tensor(run_["sequences_scores"]), name="sequences_scores")
    steps = sorted((k for k in scores if k.startswith(f"{name}.scores.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    for got, key in zip(out.scores, steps):
        assert_close(got.float(), scores[key], name=key)


@pytest.mark.parametrize("family", ["llama", "codegen"])
def test_compiled_step_of_a_packed_model_gives_the_references_ids_and_scores(family):
    """compile=True compiles the step around the packed products (each one call out of the graph)."""
    model, meta, scores = _generate_fixture(f"{family}/generate")
    pack_linears_(model)
    run_ = meta["runs"]["greedy_scores"]
    inputs = {k: torch.tensor(v) for k, v in meta["inputs"].items()}
    out = model.generate(**inputs, **run_["kwargs"], compile=True)
    assert out.sequences.tolist() == run_["sequences"]
    steps = sorted((k for k in scores if k.startswith("greedy_scores.scores.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    for got, key in zip(out.scores, steps):
        assert_close(got.float(), scores[key], name=key)


def test_a_copied_packed_layer_is_a_layer_of_its_own():
    """(oneDNN's packed tensors cannot be copied at all; FBGEMM's int8 layers can.)"""
    import copy

    from polyformer.pt.packing import packed_linear
    from polyformer.pt.quantize import Int8DynamicActivationLinear

    layer = Int8DynamicActivationLinear(nn.Linear(32, 16))
    twin = copy.deepcopy(layer)
    assert twin.handle != layer.handle
    x = torch.randn(2, 32)
    assert torch.equal(packed_linear(x, twin.handle), twin.run(x))  # the op runs the kernel's product
    assert torch.equal(packed_linear(x, layer.handle), layer.run(x))
    with torch.no_grad():
        assert torch.equal(twin(x), layer(x))


DISTILBERT = [c for c in load_cases("distilbert") if not c.raises]


@pytest.mark.parametrize("case", params(DISTILBERT))
def test_packed_encoder_matches_the_reference(case):
    model = pack_linears_(load_model(getattr(polyformer, case.model_class), case))
    (assert_tuple if case.spec["returns"] == "tuple" else assert_output)(run(model, case), case)


def _tiny_packed(dtype=torch.float32):
    model = polyformer.LlamaForCausalLM(polyformer.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4))
    return pack_linears_(model.to(dtype).eval())


def test_packed_layers_refuse_gradients_other_dtypes_and_saving(tmp_path):
    model = _tiny_packed()
    layer = model.lm_head
    assert isinstance(layer, PackedLinear)
    with pytest.raises(RuntimeError, match="inference only"):
        layer(torch.randn(1, 32, requires_grad=True))
    with pytest.raises(TypeError, match="packed for torch.float32 inputs, got torch.float64"):
        layer(torch.randn(1, 32, dtype=torch.float64))
    with pytest.raises(NotImplementedError, match="save the model before packing"):
        model.save_pretrained(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pack_refuses_weights_it_cannot_pack():
    model = polyformer.LlamaForCausalLM(polyformer.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4))
    with pytest.raises(ValueError, match=r"float32 or bfloat16 weights on CPU; .* has torch.float16"):
        pack_linears_(model.half())
    assert not is_packed(model)  # nothing replaced when one layer is refused


@pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="oneDNN has no bfloat16 on this CPU")
def test_packed_bfloat16_logits_within_bfloat16_rounding_of_plain():
    torch.manual_seed(0)
    plain = polyformer.LlamaForCausalLM(polyformer.LlamaConfig(
        vocab_size=64, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4))
    plain = plain.to(torch.bfloat16).eval()
    ids = torch.randint(0, 64, (2, 7))
    with torch.no_grad():
        expected = plain(ids).logits.float()
        got = pack_linears_(plain)(ids).logits.float()
    # bfloat16 keeps 8 bits: two summation orders of a 64-term dot product differ by a few units of 2^-8
    assert_close(got, expected, atol=2 ** -5, rtol=2 ** -5, name="bfloat16 logits")
