"""generate() on the real families against transformers 4.37.2, exactly its ids and its scores to 1e-5:
CodeGen, GPT-J, Llama, IDEFICS (with and without the perceiver) on a batch of two left-padded prompts —
greedy (with and without cache, with EOS), beam search, sampling under torch.manual_seed; MVP
(MvpForConditionalGeneration, with and without prompts) on a batch of two right-padded sources — greedy,
beam search (num_beams 3, num_return_sequences), forced BOS / EOS, sampling. After the prompt every family
decodes with generate()'s one-token static step (generation/static_step.py), eager and compiled.

Fixtures: tests/fixtures/<family>/generate*/ (scripts/fixtures/make_decoder_fixtures.py and the MVP script).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import polyformer
from polyformer.generation import decoding
from polyformer.generation.static_step import static_buffers
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


@pytest.mark.parametrize("search", [{}, {"num_beams": 3, "num_return_sequences": 2}], ids=["greedy", "beams"])
@pytest.mark.parametrize("family", FAMILIES)
def test_one_cache_and_one_token_per_step(family, search, monkeypatch):
    """The prompt runs once through the model's forward (an encoder-decoder's encoder once, then its
    decoder on the start token), then each new token is one static step over (B, 1) tokens: the LM head
    sees them, the forward is not called again. One cache for the whole call, its buffers allocated for one
    block (not for max_length) and never moved while tokens fit, also with beams."""
    folder, meta, _ = _fixture(family)
    model = _model(family, folder, meta)
    caches, calls, forwards, encoder_runs = [], [], [], []
    make_cache = model._init_generation_cache
    monkeypatch.setattr(model, "_init_generation_cache", lambda *args: caches.append(make_cache(*args)) or caches[-1])

    def record(module, args, out):  # tokens the LM head sees, where the cache's buffers are
        calls.append((args[0].shape[1], static_buffers(caches[0]).keys[0].data_ptr()))

    hooks = [model.lm_head.register_forward_hook(record), model.register_forward_pre_hook(lambda *_: forwards.append(1))]
    if _is_seq2seq(family):
        hooks.append(model.get_encoder().register_forward_pre_hook(lambda *_: encoder_runs.append(1)))
    try:
        inputs = {k: torch.tensor(v) for k, v in meta["inputs"].items()}
        model.generate(**inputs, max_new_tokens=6, pad_token_id=0, max_length=None, eos_token_id=None, **search)
    finally:
        for hook in hooks:
            hook.remove()
    prompt = 1 if _is_seq2seq(family) else inputs["input_ids"].shape[1]  # the decoder's prompt: the start token
    assert [n for n, _ in calls] == [prompt] + [1] * 5
    assert len(forwards) == 1 and len(encoder_runs) == (1 if _is_seq2seq(family) else 0)
    assert len(caches) == 1 and len({pointer for _, pointer in calls}) == 1
    assert static_buffers(caches[0]).capacity == BLOCK


@pytest.mark.parametrize("family", FAMILIES)
def test_generation_config_written_as_the_reference_wrote_it(family, tmp_path):
    """The file a config-derived generation config gives is byte for byte the reference's."""
    folder, meta, _ = _fixture(family)
    checkpoint = (folder / meta["checkpoint"]).resolve()
    config = getattr(polyformer, meta["model_class"]).config_class.from_pretrained(str(checkpoint))
    polyformer.GenerationConfig.from_model_config(config).save_pretrained(tmp_path)
    assert (tmp_path / "generation_config.json").read_text() == (checkpoint / "generation_config.json").read_text()


# The compiled step: one compile per shape takes seconds, so these run one small fixture of a plain decoder
# (CodeGen, Llama), of IDEFICS (gated cross-attention to the cached image keys / values) and of MVP
# (encoder-decoder, with prompts) only.
COMPILED = [f for f in FAMILIES
            if f in ("codegen/generate", "llama/generate", "idefics/generate", "mvp/generate_prompt")]


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
    monkeypatch.setattr(static_step, "_compiled", lambda: compiled.append(True) or static_step._step)
    eager = model.generate(**inputs, max_new_tokens=3, pad_token_id=0)
    assert not compiled
    for kwargs in ({"cache_implementation": "static"}, {"compile": True},
                   {"generation_config": polyformer.GenerationConfig(max_new_tokens=3, cache_implementation="static")}):
        assert torch.equal(model.generate(**inputs, max_new_tokens=3, pad_token_id=0, **kwargs), eager)
    assert len(compiled) == 3 * 2  # two steps after the prompt, in each of the three calls
    with pytest.raises(ValueError, match="cache_implementation"):
        model.generate(**inputs, max_new_tokens=3, cache_implementation="paged")
    with pytest.raises(TypeError, match="compile"):
        model.generate(**inputs, max_new_tokens=3, compile="yes")


def test_compile_failure_falls_back_to_the_eager_step(monkeypatch, caplog):
    from polyformer.generation import static_step

    class BackendCompilerFailed(Exception):  # what torch._dynamo raises when inductor cannot build the step
        __module__ = "torch._dynamo.exc"

    def broken(*args, **kwargs):
        raise BackendCompilerFailed("no C++ compiler")

    folder, meta, _ = _fixture("gptj/generate")
    model = _model("gptj/generate", folder, meta)
    inputs = {k: torch.tensor(v) for k, v in meta["inputs"].items()}
    monkeypatch.setattr(static_step, "_compiled", lambda: broken)
    monkeypatch.setattr(static_step, "_COMPILE_FAILED", False)
    with caplog.at_level("WARNING"):
        out = model.generate(**inputs, max_new_tokens=4, pad_token_id=0, compile=True)
    assert torch.equal(out, model.generate(**inputs, max_new_tokens=4, pad_token_id=0))
    assert sum("could not build the decoding step" in r.getMessage() for r in caplog.records) == 1


def _tiny_call(family: str):
    """A tiny IDEFICS, MVP (with prompts) or MvpForCausalLM and a call whose prompt ends a few tokens before
    the cache's first block does: left padding, images that the last prompt token sees only some of; a
    padded source."""
    torch.manual_seed(0)
    prompt = BLOCK - 6
    ids = torch.randint(3, 50, (2, prompt))
    if family == "idefics":
        vision = dict(embed_dim=16, image_size=10, patch_size=5, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=20)
        config = polyformer.IdeficsConfig(vocab_size=50, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                                          num_attention_heads=2, vision_config=vision, alpha_initializer="ones")
        mask = torch.ones_like(ids)
        mask[1, :3] = 0
        images = torch.zeros(2, prompt, 2, dtype=torch.long)
        images[0, :, 0], images[1, 5:, 1] = 1, 1
        inputs = dict(input_ids=ids, attention_mask=mask, pixel_values=torch.rand(2, 2, 3, 10, 10),
                      image_attention_mask=images)
        return polyformer.IdeficsForVisionText2Text(config).eval(), inputs
    config = polyformer.MvpConfig(vocab_size=50, d_model=16, encoder_layers=2, decoder_layers=2,
                                  encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                                  decoder_ffn_dim=32, max_position_embeddings=2 * BLOCK, use_prompt=True,
                                  prompt_length=3, prompt_mid_dim=8)
    if family == "mvp_causal":  # MVP's decoder alone, without prompts (as the reference builds it)
        mask = torch.ones_like(ids)
        mask[1, :3] = 0
        return polyformer.MvpForCausalLM(config).eval(), dict(input_ids=ids, attention_mask=mask)
    source = torch.randint(3, 50, (2, 7))
    source_mask = torch.ones_like(source)
    source_mask[1, 5:] = 0
    inputs = dict(input_ids=source, attention_mask=source_mask, decoder_input_ids=ids)
    return polyformer.MvpForConditionalGeneration(config).eval(), inputs


@pytest.mark.parametrize("family", ["idefics", "mvp", "mvp_causal"])
def test_static_step_through_a_cache_growth_gives_the_forwards_tokens(family, monkeypatch):
    """IDEFICS and MVP (encoder-decoder, decoder alone) past the cache's first block: the buffers grow in
    the middle of the call (copied into buffers of twice the capacity), the stored image / encoder keys and
    values stay, and the step goes on with the ids and scores of the forward path (output_hidden_states
    keeps every token on the model's forward, over the same kind of cache). MVP with head masks keeps the
    forward path."""
    model, inputs = _tiny_call(family)
    caches, forwards = [], []
    make_cache = model._init_generation_cache
    monkeypatch.setattr(model, "_init_generation_cache", lambda *args: caches.append(make_cache(*args)) or caches[-1])
    hook = model.register_forward_pre_hook(lambda *_: forwards.append(1))
    kwargs = dict(max_new_tokens=12, eos_token_id=None, pad_token_id=0, return_dict_in_generate=True,
                  output_scores=True)
    try:
        stepped = model.generate(**inputs, **kwargs)
        assert len(forwards) == 1 and static_buffers(caches[0]).capacity == 2 * BLOCK
        cross = getattr(caches[0], "cross", {})
        forward = model.generate(**inputs, **kwargs, output_hidden_states=True)
        assert len(forwards) == 1 + 12
        if family == "mvp":
            heads = torch.ones(model.config.decoder_layers, model.config.decoder_attention_heads)
            model.generate(**inputs, max_new_tokens=3, eos_token_id=None, pad_token_id=0, decoder_head_mask=heads)
            assert len(forwards) == 1 + 12 + 3
    finally:
        hook.remove()
    assert len(cross) == (0 if family == "mvp_causal" else 2)  # both image / encoder cross-attention layers
    assert all(kv is not None for kv in (cross.values() if isinstance(cross, dict) else cross))
    assert stepped.sequences.tolist() == forward.sequences.tolist()
    for step, (got, expected) in enumerate(zip(stepped.scores, forward.scores)):
        assert_close(got, expected, name=f"scores.{step}")


@pytest.mark.parametrize("family", ["llama", "mvp", "idefics"])
@pytest.mark.parametrize("beams", [1, 2])
def test_memory_follows_the_tokens_generated_not_max_new_tokens(family, beams, monkeypatch):
    """max_new_tokens=10**12 that stops after 3 tokens: the ids, mask, positions and KV buffers hold one
    block past the prompt (no allocation sized by max_length), and greedy ids are those of a short call."""
    model, inputs = (_tiny_call(family) if family != "llama" else (polyformer.LlamaForCausalLM(polyformer.LlamaConfig(
        vocab_size=50, hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2)).eval(),
        dict(input_ids=torch.randint(3, 50, (2, 9)), attention_mask=torch.ones(2, 9, dtype=torch.long))))
    sessions = []
    session_class = decoding.Session

    class Recording(session_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            sessions.append(self)

    monkeypatch.setattr(decoding, "Session", Recording)

    class AfterThree(polyformer.StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return input_ids.shape[1] >= length + 3

    length = inputs.get("decoder_input_ids", inputs["input_ids"]).shape[1]
    kwargs = dict(eos_token_id=None, pad_token_id=0, num_beams=beams, output_scores=True,
                  return_dict_in_generate=True)
    huge = model.generate(**inputs, **kwargs, max_new_tokens=10 ** 12,
                          stopping_criteria=polyformer.StoppingCriteriaList([AfterThree()]))
    if beams == 1:  # (beams finish differently when a criterion stops them: only greedy is compared)
        short = model.generate(**inputs, **kwargs, max_new_tokens=3).sequences
        assert huge.sequences.tolist() == short[:, :huge.sequences.shape[1]].tolist()  # (MVP forces EOS last)
    blocks = -(-(length + 1) // BLOCK) * BLOCK
    assert sessions[0].ids.shape[1] == blocks and sessions[0].max_length >= 10 ** 12
    assert static_buffers(sessions[0].cache).capacity <= blocks


def test_buffers_that_cannot_fit_raise_a_memory_error_naming_max_new_tokens():
    from polyformer.pt.cache import grown

    with pytest.raises(MemoryError, match="max_new_tokens"):
        grown(torch.zeros(2, 4, dtype=torch.long), dim=1, capacity=2 ** 50, used=4)
