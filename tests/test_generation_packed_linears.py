"""generate()'s fast bfloat16 linear layers on CPU (polyformer/pt/packed.py): the same ids and scores as
F.linear, the layers restored afterwards, the switches, and the silent fallback.

Uses the tiny checkpoints of tests/fixtures/{codegen,gptj,llama}/ loaded in bfloat16.
"""

import logging
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from helpers.tolerance import assert_close
from polyformer import CodeGenForCausalLM, GPTJForCausalLM, LlamaForCausalLM
from polyformer.pt import packed

FIXTURES = Path(__file__).parent / "fixtures"
CAUSAL_LMS = {"codegen": CodeGenForCausalLM, "gptj": GPTJForCausalLM, "llama": LlamaForCausalLM}
IDS = torch.tensor([[35, 76, 35, 4, 39, 24], [0, 0, 12, 70, 83, 61]])
MASK = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])
needs_kernels = pytest.mark.skipif(not packed.supported(), reason="no oneDNN bfloat16 kernels on this machine")


def load(family, dtype=torch.bfloat16):
    return CAUSAL_LMS[family].from_pretrained(FIXTURES / family / "causal_lm", torch_dtype=dtype).eval()


def generate(model, rows, **kwargs):
    kwargs = {"max_new_tokens": 10, "pad_token_id": 0, "output_scores": True, "return_dict_in_generate": True,
              **kwargs}
    return model.generate(IDS[:rows], attention_mask=MASK[:rows], **kwargs)


@pytest.fixture
def switches(monkeypatch):
    """Restore the module's switches and support check after a test."""
    monkeypatch.setattr(packed, "ENABLED", True)
    monkeypatch.setattr(packed, "PACK_WEIGHTS", True)
    monkeypatch.setattr(packed, "_support", packed._support)
    return monkeypatch


def linears(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


# bfloat16 keeps 8 significant bits: a product summed in another order differs from F.linear's by a unit
# or two in the last place (2^-8 relative), which the layers after it carry on; scores seen here differ by
# up to ~0.016 on logits of a few units.
BF16_ATOL = BF16_RTOL = 2 ** -5


def assert_same_tokens_up_to_near_ties(fast, plain, *, beams: bool) -> None:
    """The fast kernels pick the plain path's tokens with its scores (within bfloat16 tolerances), except
    where rounding in another order may break a near-tie either way. Greedy and sampling, row by row: the
    same token and close scores at each step until a step whose two tokens are within the tolerances of
    each other in the plain path's scores (the row is not compared after it: its prefixes differ). Beam
    search picks among all beams, so its final sequence scores are compared, and the ids where they agree."""
    if beams:
        assert_close(fast.sequences_scores, plain.sequences_scores, atol=BF16_ATOL, rtol=BF16_RTOL)
        if fast.sequences.tolist() == plain.sequences.tolist():
            for a, b in zip(fast.scores, plain.scores):
                assert_close(a, b, atol=BF16_ATOL, rtol=BF16_RTOL)
        return
    start = fast.sequences.shape[1] - len(fast.scores)
    for row in range(fast.sequences.shape[0]):
        for step, (got, want) in enumerate(zip(fast.scores, plain.scores)):
            ours, theirs = fast.sequences[row, start + step].item(), plain.sequences[row, start + step].item()
            if ours != theirs:
                gap = (want[row, theirs] - want[row, ours]).abs()
                assert gap <= BF16_ATOL + BF16_RTOL * want[row, theirs].abs(), \
                    f"row {row}, step {step}: token {ours} instead of {theirs}, {gap.item()} apart"
                break
            assert_close(got[row], want[row], atol=BF16_ATOL, rtol=BF16_RTOL, name=f"row {row}, step {step}")


@pytest.mark.parametrize("family", sorted(CAUSAL_LMS))
@pytest.mark.parametrize("rows,kwargs", [(1, {}), (2, {}), (1, {"num_beams": 3}), (2, {"do_sample": True})],
                         ids=["one-row", "two-rows", "beams", "sampling"])
def test_same_tokens_and_scores_as_f_linear_within_bfloat16_rounding(family, rows, kwargs, switches):
    model = load(family)
    results = {}
    for enabled in (False, True):
        switches.setattr(packed, "ENABLED", enabled)
        torch.manual_seed(0)
        results[enabled] = generate(model, rows, **kwargs)
    assert_same_tokens_up_to_near_ties(results[True], results[False], beams="num_beams" in kwargs)


@needs_kernels
@pytest.mark.parametrize("rows,packs", [(1, False), (2, True)])
def test_layers_switched_during_generate_and_restored_after(rows, packs, switches):
    model = load("codegen")
    state = {k: (v.data_ptr(), v.clone()) for k, v in model.state_dict().items()}
    seen, packed_rows = [], []
    real_pack = packed.pack
    switches.setattr(packed, "pack", lambda w, r: packed_rows.append(r) or real_pack(w, r))
    hook = model.lm_head.register_forward_hook(lambda m, i, o: seen.append("forward" in m.__dict__))
    generate(model, rows, max_new_tokens=3)
    hook.remove()
    assert seen and all(seen)  # every forward of the head ran the fast kernel's forward
    assert packed_rows == ([rows] * len(linears(model)) if packs else [])
    assert all("forward" not in m.__dict__ for m in linears(model))  # nn.Linear.forward again
    after = model.state_dict()
    assert set(after) == set(state)
    for key, (ptr, value) in state.items():
        assert after[key].data_ptr() == ptr and torch.equal(after[key], value), key


@needs_kernels
def test_layers_restored_when_decoding_raises(switches):
    model = load("codegen")

    def fail(module, inputs, output):
        raise RuntimeError("boom")

    model.lm_head.register_forward_hook(fail)
    with pytest.raises(RuntimeError, match="boom"):
        generate(model, 2)
    assert all("forward" not in m.__dict__ for m in linears(model))


@needs_kernels
def test_switches(switches):
    model = load("codegen")
    with packed.fast_linears(model, rows=2) as n:
        assert n == len(linears(model))
    switches.setattr(packed, "PACK_WEIGHTS", False)
    switches.setattr(packed, "pack", lambda w, r: pytest.fail("packed although PACK_WEIGHTS is False"))
    with packed.fast_linears(model, rows=2) as n:
        assert n == len(linears(model))  # one-row kernels still on, no copies
    switches.setattr(packed, "ENABLED", False)
    with packed.fast_linears(model, rows=2) as n:
        assert n == 0 and all("forward" not in m.__dict__ for m in linears(model))


def test_environment_variables_set_the_switches(monkeypatch):
    monkeypatch.setenv("POLYFORMER_FAST_LINEAR", "0")
    assert packed._env_flag("POLYFORMER_FAST_LINEAR") is False
    monkeypatch.setenv("POLYFORMER_FAST_LINEAR", "1")
    assert packed._env_flag("POLYFORMER_FAST_LINEAR") is True
    monkeypatch.delenv("POLYFORMER_PACK_WEIGHTS", raising=False)
    assert packed._env_flag("POLYFORMER_PACK_WEIGHTS") is True


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_other_dtypes_are_left_alone(dtype, switches):
    model = load("codegen", dtype)
    with packed.fast_linears(model, rows=2) as n:
        assert n == 0


@needs_kernels
def test_nested_calls_leave_the_outer_switch_in_place(switches):
    model = load("llama")
    with packed.fast_linears(model, rows=1) as outer:
        with packed.fast_linears(model, rows=1) as inner:
            assert outer == len(linears(model)) and inner == 0
        assert all("forward" in m.__dict__ for m in linears(model))
    assert all("forward" not in m.__dict__ for m in linears(model))


@needs_kernels
def test_gradients_still_flow_through_f_linear(switches):
    layer = nn.Linear(8, 4).to(torch.bfloat16)
    x = torch.randn(1, 8, dtype=torch.bfloat16)
    with packed.fast_linears(layer, rows=2):
        layer(x).float().sum().backward()
    assert layer.weight.grad is not None and torch.equal(layer.weight.grad[0], x[0])


def test_missing_onednn_falls_back_to_f_linear(switches, caplog):
    switches.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    switches.setattr(packed, "_support", None)
    model = load("gptj")
    with caplog.at_level(logging.DEBUG, logger=packed.__name__):
        with packed.fast_linears(model, rows=2) as n:
            assert n == 0
        assert not packed.supported()
    assert any("using F.linear" in r.getMessage() for r in caplog.records)
    switches.setattr(packed, "ENABLED", False)
    plain = generate(model, 2)
    switches.setattr(packed, "ENABLED", True)
    assert generate(model, 2).sequences.tolist() == plain.sequences.tolist()


@needs_kernels
def test_a_weight_that_cannot_be_packed_keeps_the_other_kernels(switches, caplog):
    model = load("codegen")

    def refuse(weight, rows):
        raise RuntimeError("no packing today")

    switches.setattr(packed, "pack", refuse)
    switches.setattr(packed, "ENABLED", False)
    plain = generate(model, 2)
    switches.setattr(packed, "ENABLED", True)
    with caplog.at_level(logging.DEBUG, logger=packed.__name__):
        assert generate(model, 2).sequences.tolist() == plain.sequences.tolist()
    assert any("could not pack" in r.getMessage() for r in caplog.records)
