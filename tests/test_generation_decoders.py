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
from polyformer.pt.cache import BLOCK
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
def test_one_cache_and_one_token_per_step(family, monkeypatch):
    """The prompt runs once, then each new token is one step over (B, 1) tokens; one cache for the whole
    call, its buffers allocated for one block (not for max_length) and never moved while tokens fit."""
    folder, meta, _ = _fixture(family)
    model = _model(family, folder, meta)
    caches, calls = [], []
    make_cache = model._init_generation_cache
    monkeypatch.setattr(model, "_init_generation_cache", lambda *args: caches.append(make_cache(*args)) or caches[-1])
    hook = model.lm_head.register_forward_hook(
        lambda module, args, out: calls.append((args[0].shape[1], caches[0].keys[0].data_ptr())))
    try:
        inputs = {k: torch.tensor(v) for k, v in meta["inputs"].items()}
        model.generate(**inputs, max_new_tokens=6, pad_token_id=0, max_length=None)
    finally:
        hook.remove()
    assert [n for n, _ in calls] == [inputs["input_ids"].shape[1]] + [1] * 5
    assert len(caches) == 1 and len({pointer for _, pointer in calls}) == 1
    assert caches[0].capacity == BLOCK


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
        steps.append((kwargs["decoder_input_ids"].shape[1], id(cache), cache.self_attention.keys[0].data_ptr()))

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


# The compiled step: one compile per shape takes seconds, so these run the small CodeGen / Llama fixtures only.
COMPILED = [f for f in FAMILIES if f in ("codegen/generate", "llama/generate")]


@pytest.mark.parametrize("family", COMPILED)
@pytest.mark.parametrize("name", ["greedy_scores", "beam_return_2"])
def test_compiled_step_gives_the_references_ids(family, name):
    """generate(compile=True): the prompt eagerly, then the torch.compile'd step; the reference's ids and
    scores, as the eager step gives them."""
    folder, meta, scores = _fixture(family)
    run = meta["runs"][name]
    inputs = {k: torch.tensor(v) for k, v in meta["inputs"].items()}
    out = _model(family, folder, meta).generate(**inputs, **run["kwargs"], compile=True)
    assert out.sequences.tolist() == run["sequences"]
    for got, key in zip(out.scores, sorted((k for k in scores if k.startswith(f"{name}.scores.")),
                                           key=lambda k: int(k.rsplit(".", 1)[1]))):
        assert_close(got.float(), scores[key], name=key)


def test_static_cache_implementation_compiles_and_bad_values_raise(monkeypatch):
    from polyformer.generation import static_step

    folder, meta, _ = _fixture("llama/generate")
    model = _model("llama/generate", folder, meta)
    inputs = {k: torch.tensor(v) for k, v in meta["inputs"].items()}
    compiled = []
    monkeypatch.setattr(static_step, "_compiled", lambda autotune: compiled.append(autotune) or static_step._step)
    eager = model.generate(**inputs, max_new_tokens=3, pad_token_id=0)
    assert not compiled
    for kwargs in ({"cache_implementation": "static"}, {"compile": True},
                   {"generation_config": polyformer.GenerationConfig(max_new_tokens=3, cache_implementation="static")}):
        assert torch.equal(model.generate(**inputs, max_new_tokens=3, pad_token_id=0, **kwargs), eager)
    assert compiled == [False] * 3 * 2  # two steps after the prompt, in each of the three calls
    with pytest.raises(ValueError, match="cache_implementation"):
        model.generate(**inputs, max_new_tokens=3, cache_implementation="paged")
    with pytest.raises(TypeError, match="compile"):
        model.generate(**inputs, max_new_tokens=3, compile="yes")


def test_compile_failure_falls_back_to_the_eager_step(monkeypatch, caplog):
    from polyformer.generation import static_step

    class BackendCompilerFailed(Exception):  # what torch._dynamo raises when inductor cannot build the step
        __module__ = "torch._dynamo.exc"

    def broken(*args):
        raise BackendCompilerFailed("no C++ compiler")

    folder, meta, _ = _fixture("gptj/generate")
    model = _model("gptj/generate", folder, meta)
    inputs = {k: torch.tensor(v) for k, v in meta["inputs"].items()}
    monkeypatch.setattr(static_step, "_compiled", lambda autotune: broken)
    monkeypatch.setattr(static_step, "_COMPILE_FAILED", False)
    with caplog.at_level("WARNING"):
        out = model.generate(**inputs, max_new_tokens=4, pad_token_id=0, compile=True)
    assert torch.equal(out, model.generate(**inputs, max_new_tokens=4, pad_token_id=0))
    assert sum("could not build the decoding step" in r.getMessage() for r in caplog.records) == 1
