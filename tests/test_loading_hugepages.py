"""Weights placed in 2 MB pages by from_pretrained (polyformer/pt/hugepages.py): same values, dtype and
Parameter objects, ties kept, saves that hold only the tensors' bytes, the switch, and no effect where
madvise is missing. The placement is a memory-layout change only: parity tests elsewhere load the same
way and must still match the reference."""

import os

import pytest
import torch
import torch.nn as nn

from helpers.tolerance import assert_close
from polyformer import CodeGenConfig, CodeGenForCausalLM
from polyformer.pt import hugepages

MB = 1 << 20
has_madvise = pytest.mark.skipif(hugepages._libc_madvise() is None, reason="no madvise (not Linux)")


def aligned(tensor):
    return tensor.data_ptr() % hugepages.HUGE_PAGE == 0


@has_madvise
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.int64])
def test_copy_is_aligned_and_equal(dtype):
    tensor = torch.randn(3 * MB // 8, 2).to(dtype)  # 3 MB in float32 / int64, 1.5 MB in bfloat16
    placed = hugepages.in_huge_pages(tensor)
    if tensor.numel() * tensor.element_size() < hugepages.HUGE_PAGE:
        assert placed is tensor
        return
    assert placed is not tensor and aligned(placed)
    assert placed.dtype == dtype and placed.shape == tensor.shape and placed.is_contiguous()
    assert torch.equal(placed, tensor)


def test_small_and_meta_tensors_stay():
    small = torch.zeros(1000)
    assert hugepages.in_huge_pages(small) is small
    meta = torch.empty(4 * MB, device="meta")
    assert hugepages.in_huge_pages(meta) is meta


def tiny_big_model():
    """Two layers whose weights are 4-16 MB (float32), a 4 MB tied-able embedding, small norms."""
    config = CodeGenConfig(n_layer=2, n_embd=1024, n_head=16, rotary_dim=32, vocab_size=1024, n_positions=64)
    torch.manual_seed(0)
    return CodeGenForCausalLM(config).eval()


@has_madvise
def test_from_pretrained_places_big_weights_and_keeps_values(tmp_path):
    model = tiny_big_model()
    model.save_pretrained(tmp_path)
    loaded = CodeGenForCausalLM.from_pretrained(tmp_path)
    for (name, expected), (_, got) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(expected, got), name
        assert aligned(got) == (got.numel() * got.element_size() >= hugepages.HUGE_PAGE), name
    ids = torch.tensor([[5, 9, 200, 31]])
    with torch.inference_mode():
        # the same bytes elsewhere in memory: BLAS may sum in another order for another alignment
        assert_close(model(ids).logits, loaded(ids).logits)


@has_madvise
def test_parameters_keep_identity_and_ties():
    model = tiny_big_model()
    model.lm_head.weight = model.transformer.wte.weight  # tied: one Parameter under two names
    before = {name: p for name, p in model.named_parameters(remove_duplicate=False)}
    values = {name: p.detach().clone() for name, p in before.items()}
    moved = hugepages.place_weights(model)
    assert moved == 9  # 2 x (qkv, out, fc_in, fc_out) + the tied embedding once
    for name, p in model.named_parameters(remove_duplicate=False):
        assert p is before[name] and torch.equal(p, values[name]), name
    assert model.lm_head.weight is model.transformer.wte.weight and aligned(model.lm_head.weight)


@has_madvise
@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "bin"])
def test_saves_hold_only_the_tensors_bytes(tmp_path, safe):
    model = tiny_big_model()
    hugepages.place_weights(model)
    model.save_pretrained(tmp_path, safe_serialization=safe)
    name = "model.safetensors" if safe else "pytorch_model.bin"
    payload = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    assert payload <= os.path.getsize(tmp_path / name) < payload + MB  # not the 2 MB-padded buffers
    again = CodeGenForCausalLM.from_pretrained(tmp_path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key


def test_switch_and_missing_madvise(monkeypatch):
    layer = nn.Linear(1024, 1024)
    address = layer.weight.data_ptr()
    monkeypatch.setattr(hugepages, "ENABLED", False)
    assert hugepages.place_weights(layer) == 0 and layer.weight.data_ptr() == address
    monkeypatch.setattr(hugepages, "ENABLED", True)
    monkeypatch.setattr(hugepages, "_looked_up", True)
    monkeypatch.setattr(hugepages, "_madvise", None)  # as off Linux
    assert hugepages.place_weights(layer) == 0 and layer.weight.data_ptr() == address


def test_refused_advice_leaves_the_tensor(monkeypatch):
    monkeypatch.setattr(hugepages, "_looked_up", True)
    monkeypatch.setattr(hugepages, "_madvise", lambda address, length, advice: -1)  # huge pages off
    tensor = torch.zeros(3 * MB // 4)
    assert hugepages.in_huge_pages(tensor) is tensor
