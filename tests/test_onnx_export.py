"""`polyformer export onnx`: the graphs onnxruntime runs give PyTorch's outputs to 1e-4, at batch sizes and
lengths other than the traced ones (dynamic axes). Skipped without onnxruntime (pip install 'polyformer[onnx]')."""

from __future__ import annotations

import pytest
import torch

ort = pytest.importorskip("onnxruntime")

import polyformer  # noqa: E402
from helpers.parity import FIXTURES  # noqa: E402
from helpers.tolerance import assert_close  # noqa: E402
from polyformer import AutoConfig  # noqa: E402
from polyformer.cli import main  # noqa: E402
from polyformer.onnx_export import export_onnx, infer_task  # noqa: E402

TOL = dict(atol=1e-4, rtol=1e-4)


def run_graph(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [torch.from_numpy(o.copy()) for o in session.run(None, {k: v.numpy() for k, v in feeds.items()})]


def load(folder):
    config = AutoConfig.from_pretrained(folder)
    return getattr(polyformer, config.architectures[0]).from_pretrained(folder).eval()


def padded_batch(batch: int, length: int, vocab: int = 90, choices: int = 0):
    gen = torch.Generator().manual_seed(batch * 100 + length)
    shape = (batch, choices, length) if choices else (batch, length)
    ids = torch.randint(5, vocab, shape, generator=gen)
    mask = torch.ones_like(ids)
    mask[0, ..., length // 2:] = 0  # right padding in the first row
    return ids, mask


ENCODERS = ["distilbert/model", "distilbert/masked_lm", "distilbert/seqcls_single_label",
            "distilbert/token_classification", "distilbert/question_answering", "distilbert/multiple_choice",
            "canine/model", "canine/seqcls_single_label", "canine/question_answering", "canine/multiple_choice"]
FIELDS = ("last_hidden_state", "logits", "start_logits", "end_logits")


@pytest.mark.parametrize("case", ENCODERS)
def test_encoder_heads(case, tmp_path):
    folder = FIXTURES / case
    paths = export_onnx(folder, tmp_path, sequence_length=64)
    assert [p.name for p in paths] == ["model.onnx"] and (tmp_path / "config.json").is_file()
    model = load(folder)
    canine = model.config.model_type == "canine"
    length = 64 if canine else 13  # CANINE: the fixed length of its graph (its maximum here)
    choices = 4 if "multiple_choice" in case else 0
    ids, mask = padded_batch(3, length, choices=choices)
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask)
    outputs = run_graph(paths[0], {"input_ids": ids, "attention_mask": mask})
    names = [f for f in FIELDS if getattr(expected, f, None) is not None and f in (
        ["last_hidden_state"] if infer_task(model.config) == "feature-extraction" else FIELDS[1:])]
    assert len(outputs) == len(names)
    for name, got in zip(names, outputs):
        assert_close(got, getattr(expected, name), name=f"{case} {name}", **TOL)


def test_groupvit_towers(tmp_path):
    folder = FIXTURES / "groupvit" / "model"
    text_path, vision_path = export_onnx(folder, tmp_path)
    model = load(folder)
    ids, mask = padded_batch(3, 9)
    size = model.config.vision_config.image_size
    pixels = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        text = model.get_text_features(input_ids=ids, attention_mask=mask)
        image = model.get_image_features(pixel_values=pixels)
    assert_close(run_graph(text_path, {"input_ids": ids, "attention_mask": mask})[0], text, name="text_embeds", **TOL)
    assert_close(run_graph(vision_path, {"pixel_values": pixels})[0], image, name="image_embeds", **TOL)


DECODERS = ["llama/causal_lm", "codegen/causal_lm", "gptj/causal_lm"]


def _left_padded(length: int, batch: int = 3):
    ids, _ = padded_batch(batch, length)
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


@pytest.mark.parametrize("case", DECODERS)
def test_decoder_with_past(case, tmp_path):
    """The default task of a causal LM: a prefix's cache in, the next tokens' logits and the grown cache out."""
    folder = FIXTURES / case
    (path,) = export_onnx(folder, tmp_path)
    model = load(folder)
    ids, mask, positions = _left_padded(12)
    split = 7
    with torch.no_grad():
        prefix = model(input_ids=ids[:, :split], attention_mask=mask[:, :split], position_ids=positions[:, :split],
                       use_cache=True)
        full = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
    feeds = {"input_ids": ids[:, split:], "attention_mask": mask, "position_ids": positions[:, split:]}
    for i, (k, v) in enumerate(prefix.past_key_values):
        feeds[f"past_key_values.{i}.key"], feeds[f"past_key_values.{i}.value"] = k, v
    logits, *present = run_graph(path, feeds)
    real = mask.bool()  # padded positions attend to nothing: what they hold differs between attention kernels
    assert_close(logits[real[:, split:]], full.logits[:, split:][real[:, split:]], name=f"{case} logits", **TOL)
    flat = [t for layer in full.past_key_values for t in layer]
    assert len(present) == len(flat)
    for i, (got, expected) in enumerate(zip(present, flat)):
        assert got.shape == expected.shape
        assert_close(got.transpose(1, 2)[real], expected.transpose(1, 2)[real], name=f"{case} present {i}", **TOL)


@pytest.mark.parametrize("case", DECODERS)
def test_decoder_without_past(case, tmp_path):
    folder = FIXTURES / case
    (path,) = export_onnx(folder, tmp_path, task="text-generation")
    model = load(folder)
    ids, mask, positions = _left_padded(10, batch=2)
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask, position_ids=positions).logits
    (logits,) = run_graph(path, {"input_ids": ids, "attention_mask": mask, "position_ids": positions})
    real = mask.bool()  # (padded positions attend to nothing: see test_decoder_with_past)
    assert_close(logits[real], expected[real], name=f"{case} logits", **TOL)


def test_cli(tmp_path, capsys):
    folder = FIXTURES / "distilbert" / "seqcls_single_label"
    assert main(["-q", "export", "onnx", str(folder), str(tmp_path), "--task", "feature-extraction", "--opset", "14"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "model.onnx")
    ids, mask = padded_batch(2, 6)
    (hidden,) = run_graph(tmp_path / "model.onnx", {"input_ids": ids, "attention_mask": mask})
    assert hidden.shape == (2, 6, 32)


def test_bad_arguments(tmp_path):
    folder = FIXTURES / "distilbert" / "model"
    with pytest.raises(ValueError, match="task must be one of"):
        export_onnx(folder, tmp_path, task="translation")
    with pytest.raises(ValueError, match="opset must be an int from 14 to 20"):
        export_onnx(folder, tmp_path, opset=9)
