"""Encoder-decoder generate() against transformers 4.37.2 on the same toy (tests/helpers/generation_toy.py `encode` /
`decode`, wrapped as a BART-style model on both sides): greedy, sampling, beam search and beam sampling,
num_return_sequences, forced BOS / EOS, decoder prefixes, encoder logits processors — the reference's ids
exactly and its scores, attentions and hidden states to 1e-5; with the preallocated cache, with the
model-returned tuple cache and without a cache. Then what the reference does not show: the encoder runs
once per call, the cache is allocated once, `encoder_outputs` / `inputs_embeds` given instead of ids,
bad input."""

from __future__ import annotations

import pytest
import torch

import polyformer
from helpers.generation_models import ToySeq2SeqCache, check_case, expected, polyformer_kwargs, reference_cases, seq2seq_model
from helpers.tolerance import assert_close
from polyformer.pt.cache import BLOCK, EncoderDecoderCache, StaticCache

FIXTURE = reference_cases("seq2seq")
CASES = FIXTURE["meta"]["cases"]
EOS_A, EOS_B = FIXTURE["meta"]["eos"]


def _inputs(name: str) -> dict:
    return {k: FIXTURE["tensors"][key] for k, key in CASES[name]["inputs"].items()}


def _run(name: str, model=None, *, static_cache: bool = True, **overrides):
    case = CASES[name]
    model = model or seq2seq_model()
    model.static_cache = static_cache
    if case["seed"] is not None:
        torch.manual_seed(case["seed"])
    return model.generate(**_inputs(name), **polyformer_kwargs(case["kwargs"]), **overrides)


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_reference(name):
    check_case(FIXTURE, name, _run(name))


@pytest.mark.parametrize("name", sorted(n for n in CASES if n.startswith(("greedy_eos", "greedy_outputs", "beam"))))
def test_matches_reference_with_tuple_cache(name):
    check_case(FIXTURE, name, _run(name, static_cache=False))


@pytest.mark.parametrize("name", sorted(n for n in CASES if n.startswith(("greedy", "beam"))))
def test_matches_reference_with_the_default_cache(name):
    """GenerationMixin's own cache for encoder-decoder models: an EncoderDecoderCache over a StaticCache."""
    check_case(FIXTURE, name, _run(name, static_cache="default"))


@pytest.mark.parametrize("name", ["greedy", "greedy_no_forced_eos", "beam_return_2", "sample_return_2"])
def test_matches_reference_without_cache(name):
    check_case(FIXTURE, name, _run(name, use_cache=False))


@pytest.mark.parametrize("name", sorted(n for n in CASES if "transition_scores" in CASES[n]))
def test_transition_scores(name):
    result = _run(name)
    for normalize, key in ((False, "transition_scores"), (True, "transition_scores_normalized")):
        got = seq2seq_model().compute_transition_scores(result.sequences, result.scores,
                                                        getattr(result, "beam_indices", None), normalize)
        assert_close(got, expected(FIXTURE, CASES[name][key]), name=key)


def test_generation_config_from_the_model_config():
    config = seq2seq_model().generation_config.to_diff_dict()
    config.pop("transformers_version", None)
    want = dict(FIXTURE["meta"]["generation_config"])
    want.pop("transformers_version")
    assert config == want


# --- beyond the fixtures ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [dict(max_new_tokens=6), dict(max_new_tokens=6, num_beams=3, num_return_sequences=2),
                                    dict(max_new_tokens=6, do_sample=True, num_return_sequences=3)])
def test_encoder_runs_once_and_the_cache_is_allocated_once(kwargs):
    model = seq2seq_model()
    model.generate(**_inputs("greedy"), **kwargs)
    assert model.encoder.calls == 1
    lengths = [n for n, _ in model.forward_calls]
    assert lengths == [1] * 6  # one decoder token per step, the start token first
    caches = {id(c) for _, c in model.forward_calls}
    assert len(caches) == 1 and isinstance(model.forward_calls[0][1], ToySeq2SeqCache)
    rows = 2 * (kwargs.get("num_beams") or kwargs.get("num_return_sequences") or 1)
    assert model.forward_calls[0][1].keys.shape[0] == rows


def test_default_cache_is_preallocated_from_the_config():
    model = seq2seq_model()
    model.static_cache = "default"
    model.generate(**_inputs("greedy"), max_new_tokens=5, num_beams=3)
    caches = {id(c) for _, c in model.forward_calls}
    cache = model.forward_calls[0][1]
    assert len(caches) == 1 and isinstance(cache, EncoderDecoderCache)
    assert isinstance(cache.self_attention, StaticCache)
    keys = cache.self_attention.keys
    assert len(keys) == 1 and tuple(keys[0].shape) == (6, 1, BLOCK, 16)  # per layer (B x beams, H, one block, D)
    assert [tuple(t.shape) for t in cache.cross[0]] == [(6, 1, 7, 16)] * 2


def test_max_length_counts_decoder_tokens():
    result = seq2seq_model().generate(**_inputs("greedy"), max_length=4, forced_eos_token_id=None, eos_token_id=None)
    assert result.shape == (2, 4) and result[:, 0].tolist() == [2, 2]
    result = seq2seq_model().generate(**_inputs("greedy_prefix"), max_new_tokens=3, eos_token_id=None)
    assert result.shape == (2, 6)  # start + 2 given + 3 new


def test_given_encoder_outputs_skip_the_encoder_and_stay_unchanged():
    model = seq2seq_model()
    inputs = _inputs("beam")
    encoder_outputs = model.get_encoder()(**inputs, return_dict=True)
    before = encoder_outputs.last_hidden_state.clone()
    kwargs = polyformer_kwargs(CASES["beam_return_2"]["kwargs"])
    result = model.generate(encoder_outputs=encoder_outputs, attention_mask=inputs["attention_mask"], **kwargs)
    check_case(FIXTURE, "beam_return_2", result)
    assert model.encoder.calls == 1  # the call above, none in generate()
    assert torch.equal(encoder_outputs.last_hidden_state, before)
    as_tuple = (encoder_outputs.last_hidden_state,)
    check_case(FIXTURE, "greedy", model.generate(encoder_outputs=as_tuple, attention_mask=inputs["attention_mask"],
                                                 **polyformer_kwargs(CASES["greedy"]["kwargs"])))


def test_inputs_embeds_instead_of_ids():
    model = seq2seq_model()
    inputs = _inputs("greedy")
    embeds = model.params["wte"][inputs["input_ids"]].detach()
    result = model.generate(inputs_embeds=embeds, attention_mask=inputs["attention_mask"],
                            **polyformer_kwargs(CASES["greedy"]["kwargs"]))
    check_case(FIXTURE, "greedy", result)
    with pytest.raises(ValueError, match="Please pick one"):
        model.generate(inputs_embeds=embeds, input_ids=inputs["input_ids"], max_new_tokens=2)


def test_return_dict_classes_and_legacy_cache():
    model = seq2seq_model()
    greedy = model.generate(**_inputs("greedy"), max_new_tokens=3, return_dict_in_generate=True)
    assert isinstance(greedy, polyformer.GreedySearchEncoderDecoderOutput)
    (layer,) = greedy.past_key_values
    assert [t.shape for t in layer] == [(2, 1, 3, 16), (2, 1, 3, 16), (2, 1, 7, 16), (2, 1, 7, 16)]
    beams = model.generate(**_inputs("greedy"), max_new_tokens=3, num_beams=3, return_dict_in_generate=True)
    assert isinstance(beams, polyformer.BeamSearchEncoderDecoderOutput)
    nothing = model.generate(**_inputs("greedy"), max_new_tokens=0, return_dict_in_generate=True)
    assert type(nothing).__name__ == "GenerateEncoderDecoderOutput" and nothing.sequences.tolist() == [[2], [2]]


def test_legacy_greedy_search_with_encoder_outputs():
    model = seq2seq_model()
    inputs = _inputs("greedy_eos")
    encoder_outputs = model.get_encoder()(**inputs)
    criteria = polyformer.StoppingCriteriaList([polyformer.MaxLengthCriteria(9)])
    start = torch.full((2, 1), 2)
    ids = model.greedy_search(start, stopping_criteria=criteria, pad_token_id=1, eos_token_id=EOS_A,
                              encoder_outputs=encoder_outputs, attention_mask=inputs["attention_mask"])
    want = model.generate(**inputs, max_length=9, eos_token_id=EOS_A, forced_eos_token_id=None)
    assert torch.equal(ids, want)


def test_streamer_sees_decoder_tokens():
    class Collect:
        def __init__(self):
            self.chunks = []

        def put(self, value):
            self.chunks.append(value.tolist())

        def end(self):
            self.chunks.append("end")

    streamer = Collect()
    result = seq2seq_model().generate(input_ids=_inputs("greedy_single")["input_ids"], max_new_tokens=3,
                                      streamer=streamer)
    assert streamer.chunks == [[[2]], *[[t] for t in result[0, 1:].tolist()], "end"]


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(decoder_input_ids=torch.tensor([[2, 3]])), ValueError, "decoder_input_ids must be"),
    (dict(attention_mask=torch.ones(2, 3, dtype=torch.long)), ValueError, "shape of the encoder input"),
    (dict(decoder_start_token_id=None, bos_token_id=None), ValueError, "decoder_start_token_id"),
    (dict(decoder_inputs_embedz=1), ValueError, "not used by the model"),
])
def test_bad_input(kwargs, error, match):
    model = seq2seq_model()
    if "decoder_start_token_id" in kwargs:
        model.generation_config.decoder_start_token_id = model.generation_config.bos_token_id = None
    call = {**_inputs("greedy"), "max_new_tokens": 2, **kwargs}
    with pytest.raises(error, match=match):
        model.generate(**call)
    assert model.forward_calls == []


def test_decoder_attention_mask_is_not_passed_on():
    """BART's (MVP's) prepare_inputs_for_generation drops `decoder_attention_mask`; so does ours."""
    model = seq2seq_model()
    mask = torch.ones(2, 1, dtype=torch.long)
    result = model.generate(**_inputs("greedy"), decoder_attention_mask=mask, max_new_tokens=8)
    check_case(FIXTURE, "greedy", result)
