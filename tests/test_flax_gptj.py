"""Flax GPT-J against transformers 4.37.2's Flax classes (tests/fixtures/flax/gptj/): forward, the
cache, and generate() (greedy, sampling, beam search) — plus greedy ids equal to polyformer's PyTorch
generate(), and a decoding step that does not retrace.

Regenerate the fixtures with ``make fixtures`` (this family alone: ``.refvenv/bin/python scripts/fixtures/make_flax_fixtures.py``).
"""

import json

import numpy as np
import pytest
import torch

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from helpers.flax_parity import check_flax_case, model_for  # noqa: E402
from helpers.parity import FIXTURES, load_cases, params  # noqa: E402
from helpers.tolerance import assert_close  # noqa: E402
from polyformer import FlaxGPTJForCausalLM, FlaxGPTJModel, GPTJConfig, GPTJForCausalLM  # noqa: E402
from polyformer.jx.convert import flatten, flax_to_pt  # noqa: E402

MODELS = {cls.__name__: cls for cls in (FlaxGPTJModel, FlaxGPTJForCausalLM)}
CASES = load_cases("flax/gptj")
CHECKPOINT = FIXTURES / "gptj" / "causal_lm"
GENERATE = json.loads((FIXTURES / "flax" / "gptj" / "generate" / "generate.json").read_text())
PROMPTS = {k: np.array(v, np.int32) for k, v in GENERATE["inputs"].items()}


@pytest.fixture(scope="module")
def lm():
    return FlaxGPTJForCausalLM.from_pretrained(str(CHECKPOINT))


def test_fixtures_cover_every_class():
    assert {c.model_class for c in CASES} == set(MODELS)


@pytest.mark.parametrize("case", params(CASES))
def test_matches_reference(case):
    """Logits, hidden states, attentions, the tuple layout and the updated cache equal 4.37.2's to 1e-5."""
    check_flax_case(MODELS[case.model_class], case, {c.call: c for c in CASES if c.dir == case.dir})


@pytest.mark.parametrize("name", sorted(GENERATE["runs"]))
def test_generate_matches_reference(lm, name):
    """Greedy, sampling (same PRNG key: same draws) and beam search ids (and beam scores) equal 4.37.2's."""
    run = GENERATE["runs"][name]
    key = {} if run["seed"] is None else {"prng_key": jax.random.PRNGKey(run["seed"])}
    out = lm.generate(PROMPTS["input_ids"], attention_mask=PROMPTS["attention_mask"], **key, **run["kwargs"])
    assert np.asarray(out.sequences).tolist() == run["sequences"]
    if "scores" in run:
        # beam scores sum a log-probability per token: 1e-5 per step over the run
        assert_close(np.asarray(out.scores), run["scores"], atol=1e-4, rtol=1e-5)


def test_greedy_equals_pytorch_generate(lm):
    """The same checkpoint through polyformer's PyTorch generate() gives the same ids."""
    torch_model = GPTJForCausalLM.from_pretrained(str(CHECKPOINT))
    ids, mask = (torch.from_numpy(PROMPTS[k]).long() for k in ("input_ids", "attention_mask"))
    for kwargs in ({"max_new_tokens": 8}, {"max_new_tokens": 40}):
        expected = torch_model.generate(ids, attention_mask=mask, pad_token_id=0, **kwargs)
        got = np.asarray(lm.generate(PROMPTS["input_ids"], attention_mask=PROMPTS["attention_mask"], **kwargs).sequences)
        width = expected.shape[1]  # PyTorch stops once every row has ended; Flax pads to max_length
        assert got[:, :width].tolist() == expected.tolist()
        assert (got[:, width:] == 0).all()


def test_decoding_step_compiles_once(lm):
    """A compiled generate() traces the prompt step and the loop's step once each; another call with the
    same settings and shapes (other prompts) reuses it. (The greedy settings of the parity runs: no
    extra compile when those ran first.)"""
    kwargs = dict(attention_mask=PROMPTS["attention_mask"], max_new_tokens=8)
    first = lm.generate(PROMPTS["input_ids"], **kwargs)
    traces = dict(lm._traces)
    assert traces["step"] == 2 * traces["generate"]
    other = lm.generate(PROMPTS["input_ids"][::-1].copy(), attention_mask=PROMPTS["attention_mask"][::-1].copy(),
                        max_new_tokens=8)
    assert dict(lm._traces) == traces
    assert np.asarray(other.sequences).tolist() == np.asarray(first.sequences)[::-1].tolist()
    debug = lm.generate(PROMPTS["input_ids"], trace=False, attention_mask=PROMPTS["attention_mask"], max_new_tokens=2)
    assert np.asarray(debug.sequences).tolist() == np.asarray(first.sequences)[:, :8].tolist()


def test_cache_decode_equals_full_forward(lm):
    """Prompt with init_cache, then one token at a time: the logits of a forward over everything."""
    ids, mask = PROMPTS["input_ids"], PROMPTS["attention_mask"]
    full = np.asarray(lm(ids, mask, position_ids=np.maximum(mask.cumsum(-1) - 1, 0)).logits)
    kwargs = lm.prepare_inputs_for_generation(jnp.asarray(ids[:, :4]), 10, jnp.asarray(mask[:, :4]))
    assert jax.tree_util.tree_structure(kwargs["past_key_values"]) == jax.tree_util.tree_structure(lm.init_cache(2, 10))
    out = lm(ids[:, :4], params=lm.params, **kwargs)
    kwargs = lm.update_inputs_for_generation(out, kwargs)
    steps = [out.logits[:, -1]]
    for t in range(4, ids.shape[1]):
        out = lm(ids[:, t:t + 1], **kwargs)
        kwargs = lm.update_inputs_for_generation(out, kwargs)
        steps.append(out.logits[:, -1])
    assert_close(np.stack(steps, 1)[:, 1:], full[:, 4:])
    layer = kwargs["past_key_values"]["transformer"]["h"]["1"]["attn"]
    assert layer["cached_key"].shape == (2, 10, 4, 8) and int(layer["cache_index"]) == ids.shape[1]
    with pytest.raises(ValueError, match="position_ids"):
        lm(ids, past_key_values=lm.init_cache(2, 10))


def test_jit_and_bfloat16_forward(lm):
    ids, mask = PROMPTS["input_ids"], PROMPTS["attention_mask"]
    eager = np.asarray(lm(ids, mask).logits)
    jitted = jax.jit(lambda p, i, m: lm(i, m, params=p, return_dict=False)[0])(lm.params, ids, mask)
    assert_close(np.asarray(jitted), eager)
    half = FlaxGPTJForCausalLM.from_pretrained(str(CHECKPOINT), dtype=jnp.bfloat16)
    logits = half(ids, mask).logits
    assert logits.dtype == jnp.bfloat16
    assert_close(np.asarray(logits, np.float32), eager, atol=0.3, rtol=0.05)  # bfloat16 compute vs float32


def test_round_trip_and_generation_config(tmp_path, lm):
    lm.save_pretrained(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"config.json", "generation_config.json", "flax_model.msgpack"}
    again = FlaxGPTJForCausalLM.from_pretrained(str(tmp_path))
    assert again.generation_config.pad_token_id == 0 and again.generation_config.eos_token_id == 2
    state = {k: torch.from_numpy(np.array(v)) for k, v in flax_to_pt(flatten(again.params)).items()}
    torch_state = GPTJForCausalLM.from_pretrained(str(CHECKPOINT)).state_dict()
    assert state.keys() == {k for k in torch_state if not k.endswith(("attn.bias", "attn.masked_bias"))}
    for key, value in state.items():
        assert torch.equal(value, torch_state[key]), key
    base = FlaxGPTJModel.from_pretrained(str(tmp_path))
    assert_close(np.asarray(base(PROMPTS["input_ids"]).last_hidden_state),  # the same layers, another call
                 np.asarray(lm(PROMPTS["input_ids"], output_hidden_states=True).hidden_states[-1]), atol=1e-6, rtol=1e-6)


def test_fresh_tied_model_and_full_rotary():
    """Built from a config: rotary over whole heads (rotary_dim=None) and a tied LM head work."""
    config = GPTJConfig(vocab_size=50, n_positions=32, n_embd=16, n_layer=1, n_head=2, rotary_dim=None,
                        tie_word_embeddings=True, pad_token_id=0, eos_token_id=1)
    model = FlaxGPTJForCausalLM(config, seed=1)
    assert set(model.params["lm_head"]) == {"bias"}
    logits = model(np.array([[3, 4, 5]])).logits
    table = model.params["transformer"]["wte"]["embedding"]
    hidden = model(np.array([[3, 4, 5]]), output_hidden_states=True).hidden_states[-1]
    assert_close(np.asarray(logits), np.asarray(hidden @ table.T + model.params["lm_head"]["bias"]))
    with pytest.raises(NotImplementedError, match="Beam sampling"):
        model.generate(np.array([[3, 4]]), max_new_tokens=2, num_beams=2, do_sample=True)
    with pytest.raises(ValueError, match="not used by the model"):
        model.generate(np.array([[3, 4]]), max_new_tokens=2, foo=1)


def test_flax_auto_classes():
    from polyformer import FlaxAutoModel, FlaxAutoModelForCausalLM, FlaxAutoModelForMaskedLM

    assert type(FlaxAutoModelForCausalLM.from_pretrained(str(CHECKPOINT))) is FlaxGPTJForCausalLM
    assert type(FlaxAutoModel.from_pretrained(str(FIXTURES / "distilbert" / "model"))).__name__ == "FlaxDistilBertModel"
    with pytest.raises(ValueError, match="FlaxGPTJForMaskedLM"):
        FlaxAutoModelForMaskedLM.from_pretrained(str(CHECKPOINT))
