"""generate() on the real families against transformers 4.37.2, exactly its ids and its scores to 1e-5:
CodeGen, GPT-J, Llama on a batch of two left-padded prompts — greedy (with and without cache, with EOS),
beam search, sampling under torch.manual_seed; MVP (MvpForConditionalGeneration, with and without prompts)
on a batch of two right-padded sources — greedy, beam search (num_beams 3, num_return_sequences),
forced BOS / EOS, sampling.

Fixtures: tests/fixtures/<family>/generate*/ (scripts/fixtures/make_decoder_fixtures.py and the MVP script).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import polyformer
from helpers.tolerance import ATOL, RTOL, assert_close

FIXTURES = Path(__file__).resolve().parent / "fixtures"
# "<family>/<folder>" for each recorded generate fixture, e.g. "llama/generate", "mvp/generate_prompt"
FAMILIES = sorted(str(p.parent.relative_to(FIXTURES)) for p in FIXTURES.glob("*/generate*/generate.json"))


def _fixture(family: str):
    folder = FIXTURES / family
    meta = json.loads((folder / "generate.json").read_text())
    scores = load_file(str(folder / "scores.safetensors")) if (folder / "scores.safetensors").exists() else {}
    return folder, meta, scores


def _is_seq2seq(family: str) -> bool:
    return _fixture(family)[1]["model_class"].endswith("ForConditionalGeneration")


def _runs():
    for family in FAMILIES:
        for name in _fixture(family)[1]["runs"]:
            yield pytest.param(family, name, id=f"{family}/{name}")


_MODELS = {}


def _model(family: str, folder: Path, meta: dict):
    if family not in _MODELS:
        cls = getattr(polyformer, meta["model_class"])
        _MODELS[family] = cls.from_pretrained(str((folder / meta["checkpoint"]).resolve()))
    return _MODELS[family]


@pytest.mark.parametrize("family,name", list(_runs()))
def test_generate_matches_reference(family, name):
    folder, meta, scores = _fixture(family)
    run = meta["runs"][name]
    model = _model(family, folder, meta)
    inputs = {k: torch.tensor(v) for k, v in meta["inputs"].items()}
    kwargs = dict(run["kwargs"])
    seed = kwargs.pop("seed", None)
    if seed is not None:
        torch.manual_seed(seed)
    out = model.generate(**inputs, **kwargs)
    sequences = out if isinstance(out, torch.Tensor) else out.sequences
    assert sequences.tolist() == run["sequences"]
    if "sequences_scores" in run:
        assert_close(out.sequences_scores, torch.tensor(run["sequences_scores"]), name="sequences_scores")
    steps = sorted((k for k in scores if k.startswith(f"{name}.scores.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    if steps:
        assert len(out.scores) == len(steps)
        for got, key in zip(out.scores, steps):
            assert_close(got.float(), scores[key], name=key)


@pytest.mark.parametrize("family", FAMILIES)
def test_recorded_greedy_steps_hold_no_near_tie(family):
    """Exact ids are a property of every CPU only where no two tokens are nearly tied: at each recorded
    greedy step, the reference's chosen token leads the next by more than twice the tolerance that scores
    are held to, so scores within it (any CPU's rounding) pick the same token. The greedy runs without
    recorded scores decode the same prompts with the same model."""
    _, meta, scores = _fixture(family)
    checked = 0
    for name, run in meta["runs"].items():
        steps = sorted((k for k in scores if k.startswith(f"{name}.scores.")), key=lambda k: int(k.rsplit(".", 1)[1]))
        if run["kwargs"].get("num_beams", 1) > 1 or run["kwargs"].get("do_sample") or not steps:
            continue
        sequences = torch.tensor(run["sequences"])
        start = sequences.shape[1] - len(steps)
        for step, key in enumerate(steps):
            top = scores[key].topk(2, dim=-1)
            chosen = sequences[:, start + step] == top.indices[:, 0]  # rows still decoding (not padded after EOS)
            bound = 2 * (ATOL + RTOL * top.values[:, 0].abs())
            lead = top.values[:, 0] - top.values[:, 1]
            assert (lead[chosen] > bound[chosen]).all(), f"{key}: a near-tie, lead {lead[chosen].min().item()}"
            checked += int(chosen.sum())
    assert checked > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_generation_config_loaded_with_the_model(family):
    folder, meta, _ = _fixture(family)
    model = _model(family, folder, meta)
    assert model.can_generate()
    expected = {k: v for k, v in meta["generation_config"].items() if k != "transformers_version"}
    for key, value in expected.items():
        assert getattr(model.generation_config, key) == value, key


@pytest.mark.parametrize("family", [f for f in FAMILIES if not _is_seq2seq(f)])
def test_static_cache_is_allocated_once(family):
    """One cache object for the whole call, its buffers never reallocated, one token per decode step."""
    folder, meta, _ = _fixture(family)
    model = _model(family, folder, meta)
    seen = []

    def record(module, args, kwargs):
        cache = kwargs.get("past_key_values")
        seen.append((kwargs["input_ids"].shape[1], id(cache), cache.keys.data_ptr()))

    handle = model.register_forward_pre_hook(record, with_kwargs=True)
    try:
        inputs = {k: torch.tensor(v) for k, v in meta["inputs"].items()}
        model.generate(**inputs, max_new_tokens=6, pad_token_id=0)
    finally:
        handle.remove()
    assert [n for n, _, _ in seen] == [inputs["input_ids"].shape[1]] + [1] * 5
    assert len({(i, p) for _, i, p in seen}) == 1


@pytest.mark.parametrize("family", FAMILIES)
def test_generation_config_written_as_the_reference_wrote_it(family, tmp_path):
    """The file a config-derived generation config gives is byte for byte the reference's."""
    folder, meta, _ = _fixture(family)
    checkpoint = (folder / meta["checkpoint"]).resolve()
    config = getattr(polyformer, meta["model_class"]).config_class.from_pretrained(str(checkpoint))
    polyformer.GenerationConfig.from_model_config(config).save_pretrained(tmp_path)
    assert (tmp_path / "generation_config.json").read_text() == (checkpoint / "generation_config.json").read_text()


@pytest.mark.parametrize("family", [f for f in FAMILIES if _is_seq2seq(f)])
def test_encoder_runs_once_and_the_decoder_cache_is_allocated_once(family):
    """Encoder-decoder: one encoder run per call, then one preallocated cache for the whole call and one
    decoder token per step, also with beams."""
    folder, meta, _ = _fixture(family)
    model = _model(family, folder, meta)
    encoder_runs, steps = [], []

    def record(module, args, kwargs):
        cache = kwargs.get("past_key_values")
        steps.append((kwargs["decoder_input_ids"].shape[1], id(cache), cache.self_attention.keys.data_ptr()))

    hooks = [model.get_encoder().register_forward_pre_hook(lambda *a, **k: encoder_runs.append(1), with_kwargs=True),
             model.register_forward_pre_hook(record, with_kwargs=True)]
    try:
        inputs = {k: torch.tensor(v) for k, v in meta["inputs"].items()}
        model.generate(**inputs, max_new_tokens=6, num_beams=3, num_return_sequences=2, forced_eos_token_id=None)
    finally:
        for hook in hooks:
            hook.remove()
    assert len(encoder_runs) == 1
    assert [n for n, _, _ in steps] == [1] * 6
    assert len({(i, p) for _, i, p in steps}) == 1
