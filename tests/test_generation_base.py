"""generate() beyond parity: the cache, streamers, stopping criteria (max_time, stop_strings, custom),
outputs and transition scores, bad input (clear exceptions before any forward), and what is refused."""

from __future__ import annotations

import threading
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import polyformer
from helpers.generation_models import ToyCache, ToyConfig, ToyForCausalLM, polyformer_kwargs, reference_cases, toy_model
from helpers.tolerance import assert_close
from polyformer.generation import decoding

FIXTURE = reference_cases()
CASES = FIXTURE["meta"]["cases"]
PAIR = {"input_ids": torch.tensor([[0, 0, 5, 9, 3, 7], [11, 4, 19, 8, 3, 14]]),
        "attention_mask": torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])}


def _tensor(key):
    return FIXTURE["tensors"][key]


class CharTokenizer:
    """Token i decodes to a letter and a space every third token, enough for streamers and stop strings."""

    def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=False):
        return "".join(chr(ord("a") + i) + (" " if i % 3 == 0 else "") for i in ids)


# --- the cache -----------------------------------------------------------------------------------------
def test_one_static_cache_per_call_and_one_token_per_step():
    model = toy_model()
    model.generate(**PAIR, max_new_tokens=5, pad_token_id=0)
    lengths = [n for n, _ in model.forward_calls]
    caches = {id(c) for _, c in model.forward_calls}
    assert lengths == [6, 1, 1, 1, 1] and len(caches) == 1
    assert isinstance(model.forward_calls[0][1], ToyCache)


def test_without_cache_every_step_sees_every_token():
    model = toy_model()
    model.generate(**PAIR, max_new_tokens=4, pad_token_id=0, use_cache=False)
    assert [n for n, c in model.forward_calls] == [6, 7, 8, 9]
    assert all(c is None for _, c in model.forward_calls)


@pytest.mark.parametrize("name", ["greedy_eos_scores", "greedy_eos_list", "sample_top_p", "greedy_pad_detected"])
def test_spaced_out_finish_checks_give_the_same_result(monkeypatch, name):
    """On accelerators the all-finished check runs every few steps; the extra steps are trimmed."""
    monkeypatch.setattr(decoding, "sync_interval", lambda device: 3)
    case = CASES[name]
    if case["seed"] is not None:
        torch.manual_seed(case["seed"])
    inputs = {k: _tensor(v) for k, v in case["inputs"].items()}
    out = toy_model().generate(**inputs, **polyformer_kwargs(case["kwargs"]))
    sequences = out if isinstance(out, torch.Tensor) else out.sequences
    assert_close(sequences, _tensor(case["outputs"]["sequences"]), atol=0, rtol=0)  # token ids
    if not isinstance(out, torch.Tensor):
        assert len(out.scores) == len(case["outputs"]["scores"])


# --- outputs ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(n for n, c in CASES.items() if "transition_scores" in c))
def test_compute_transition_scores_matches_reference(name):
    case = CASES[name]
    if case["seed"] is not None:
        torch.manual_seed(case["seed"])
    model = toy_model()
    out = model.generate(**{k: _tensor(v) for k, v in case["inputs"].items()}, **polyformer_kwargs(case["kwargs"]))
    for normalize, key in ((False, "transition_scores"), (True, "transition_scores_normalized")):
        got = model.compute_transition_scores(out.sequences, out.scores, out.get("beam_indices"), normalize)
        assert_close(got, _tensor(case[key]), name=key)


def test_output_fields_and_legacy_names():
    model = toy_model()
    out = model.generate(**PAIR, max_new_tokens=3, pad_token_id=0, return_dict_in_generate=True, output_scores=True,
                         output_attentions=True, output_hidden_states=True)
    assert isinstance(out, polyformer.GreedySearchDecoderOnlyOutput) and isinstance(out, polyformer.SampleDecoderOnlyOutput)
    assert list(out.keys()) == ["sequences", "scores", "attentions", "hidden_states", "past_key_values"]
    assert len(out.scores) == len(out.attentions) == len(out.hidden_states) == 3
    assert out.attentions[0][0].shape == (2, 6, 6) and out.attentions[1][0].shape == (2, 1, 7)
    assert out.past_key_values[0][0].shape == (2, 1, 8, 16)  # the static cache, as legacy tuples
    beam = model.generate(**PAIR, max_new_tokens=3, pad_token_id=0, num_beams=2, return_dict_in_generate=True)
    assert isinstance(beam, polyformer.BeamSearchDecoderOnlyOutput)
    assert beam.sequences_scores is None and beam.scores is None and beam.beam_indices is None


def test_sampling_num_return_sequences_and_reproducibility():
    model = toy_model()
    torch.manual_seed(3)
    first = model.generate(**PAIR, max_new_tokens=6, pad_token_id=0, do_sample=True, num_return_sequences=3)
    torch.manual_seed(3)
    again = model.generate(**PAIR, max_new_tokens=6, pad_token_id=0, do_sample=True, num_return_sequences=3)
    assert first.shape == (6, 12) and torch.equal(first, again)
    assert torch.equal(first[:3, :6], PAIR["input_ids"][:1].expand(3, -1))


def test_start_from_bos_and_input_ids_keyword():
    model = toy_model()
    out = model.generate(max_new_tokens=3, bos_token_id=1, pad_token_id=0)
    assert out.shape == (1, 4) and out[0, 0] == 1
    assert torch.equal(model.generate(input_ids=PAIR["input_ids"], attention_mask=PAIR["attention_mask"],
                                      max_new_tokens=2, pad_token_id=0),
                       model.generate(**PAIR, max_new_tokens=2, pad_token_id=0))


def test_zero_new_tokens_returns_the_prompt():
    out = toy_model().generate(**PAIR, max_new_tokens=0, pad_token_id=0, return_dict_in_generate=True,
                               output_scores=True)
    assert torch.equal(out.sequences, PAIR["input_ids"]) and out.scores == ()


# --- streamers and stopping criteria ------------------------------------------------------------------------
def test_text_streamer_prints_the_generated_text(capsys):
    model, tokenizer = toy_model(), CharTokenizer()
    prompt = torch.tensor([[6, 13, 21, 5]])
    out = model.generate(prompt, max_new_tokens=8, pad_token_id=0, streamer=polyformer.TextStreamer(tokenizer))
    assert capsys.readouterr().out == tokenizer.decode(out[0].tolist()) + "\n"
    model.generate(prompt, max_new_tokens=8, pad_token_id=0,
                   streamer=polyformer.TextStreamer(tokenizer, skip_prompt=True))
    assert capsys.readouterr().out == tokenizer.decode(out[0, 4:].tolist()) + "\n"


def test_text_iterator_streamer_feeds_another_thread():
    model, tokenizer = toy_model(), CharTokenizer()
    prompt = torch.tensor([[6, 13, 21, 5]])
    streamer = polyformer.TextIteratorStreamer(tokenizer, skip_prompt=True, timeout=30)
    result = {}
    thread = threading.Thread(target=lambda: result.update(out=model.generate(
        prompt, max_new_tokens=8, pad_token_id=0, streamer=streamer)))
    thread.start()
    text = "".join(streamer)
    thread.join()
    assert text == tokenizer.decode(result["out"][0, 4:].tolist())


def test_streamer_refuses_batches_and_beams():
    model = toy_model()
    with pytest.raises(ValueError, match="batch size 1"):
        model.generate(**PAIR, max_new_tokens=2, pad_token_id=0, streamer=polyformer.TextStreamer(CharTokenizer()))
    with pytest.raises(ValueError, match="beam search"):
        model.generate(**PAIR, max_new_tokens=2, num_beams=2, streamer=polyformer.TextStreamer(CharTokenizer()))


def test_stop_strings_stop_each_row_where_its_text_ends_with_one():
    model, tokenizer = toy_model(), CharTokenizer()
    free = model.generate(**PAIR, max_new_tokens=10, pad_token_id=0)
    stop = tokenizer.decode(free[0, 8:10].tolist())  # row 0's 3rd and 4th new tokens
    out = model.generate(**PAIR, max_new_tokens=10, pad_token_id=0, stop_strings=[stop], tokenizer=tokenizer)
    texts = [tokenizer.decode(free[0, 6:end].tolist()) for end in range(7, 17)]
    first = next(i for i, text in enumerate(texts) if text.endswith(stop))
    assert out[0, 6:7 + first].tolist() == free[0, 6:7 + first].tolist()
    assert (out[0, 7 + first:] == 0).all()
    with pytest.raises(ValueError, match="tokenizer"):
        model.generate(**PAIR, max_new_tokens=3, pad_token_id=0, stop_strings="x")


def test_max_time_and_custom_criteria():
    model = toy_model()
    assert model.generate(**PAIR, max_new_tokens=10, pad_token_id=0, max_time=0.0).shape == (2, 7)

    class StopAtLength(polyformer.StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return input_ids.shape[1] >= 9

    out = model.generate(**PAIR, max_new_tokens=10, pad_token_id=0,
                         stopping_criteria=polyformer.StoppingCriteriaList([StopAtLength()]))
    assert out.shape == (2, 9)
    with pytest.raises(ValueError, match="already created"):
        model.generate(**PAIR, max_new_tokens=3, pad_token_id=0,
                       stopping_criteria=polyformer.StoppingCriteriaList([polyformer.MaxLengthCriteria(5)]))


# --- bad input ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,error,match", [
    (dict(input_ids=torch.randint(3, 20, (1, 49))), ValueError, "more than the model's 48 positions"),
    (dict(max_new_tokens=-1), ValueError, "max_new_tokens"),
    (dict(num_beams=0), ValueError, "num_beams"),
    (dict(do_sample=True, temperature=0.0), ValueError, "temperature"),
    (dict(do_sample=True, temperature=-0.5), ValueError, "temperature"),
    (dict(do_sample=True, top_p=0.0), ValueError, "top_p"),
    (dict(do_sample=True, top_p=1.2), ValueError, "top_p"),
    (dict(attention_mask=torch.ones(2, 5, dtype=torch.long)), ValueError, "attention_mask must have the shape"),
    (dict(input_ids=torch.ones(2, 6)), ValueError, "integer tensor"),
    (dict(input_ids=torch.ones(6, dtype=torch.long)), ValueError, "2-D"),
    (dict(max_new_token=5), ValueError, "max_new_token"),
    (dict(num_beams=2, num_return_sequences=3), ValueError, "num_return_sequences"),
    (dict(num_return_sequences=2), ValueError, "num_return_sequences"),
    (dict(top_k=-1, do_sample=True), ValueError, "top_k"),
    (dict(num_beams=4, num_beam_groups=2, diversity_penalty=0.5), NotImplementedError, "group beam search"),
    (dict(penalty_alpha=0.6, top_k=4), NotImplementedError, "contrastive"),
    (dict(force_words_ids=[[3]], num_beams=2), NotImplementedError, "constrained"),
    (dict(inputs_embeds=torch.zeros(2, 6, 16)), NotImplementedError, "inputs_embeds"),
])
def test_bad_input_raises_before_any_forward(kwargs, error, match):
    model = toy_model()
    call = {**PAIR, "max_new_tokens": 3, "pad_token_id": 0, **kwargs}
    if "input_ids" in kwargs and "attention_mask" not in kwargs:
        call.pop("attention_mask")
    with pytest.raises(error, match=match):
        model.generate(**call)
    assert model.forward_calls == []


def test_both_inputs_and_input_ids():
    with pytest.raises(ValueError, match="only one"):
        toy_model().generate(PAIR["input_ids"], input_ids=PAIR["input_ids"], max_new_tokens=2)


def test_model_that_cannot_generate():
    class NoHead(ToyForCausalLM):
        def can_generate(self):
            return False

    with pytest.raises(TypeError, match="not compatible with `.generate"):
        NoHead(ToyConfig()).generate(**PAIR, max_new_tokens=2)


def test_encoder_decoder_flag_without_an_encoder():
    model = toy_model(is_encoder_decoder=True)
    with pytest.raises(TypeError, match="get_encoder"):
        model.generate(**PAIR, max_new_tokens=2)
    assert model.forward_calls == []


def test_transformers_437_decoding_methods_match_generate():
    model = toy_model()
    criteria = polyformer.StoppingCriteriaList([polyformer.MaxLengthCriteria(12)])
    greedy = model.greedy_search(PAIR["input_ids"], stopping_criteria=criteria, pad_token_id=0, eos_token_id=16,
                                 attention_mask=PAIR["attention_mask"])
    assert torch.equal(greedy, model.generate(**PAIR, max_length=12, pad_token_id=0, eos_token_id=16))

    warpers = polyformer.LogitsProcessorList([polyformer.TopKLogitsWarper(5)])
    torch.manual_seed(0)
    sampled = model.sample(PAIR["input_ids"], stopping_criteria=criteria, logits_warper=warpers, pad_token_id=0,
                           attention_mask=PAIR["attention_mask"])
    torch.manual_seed(0)
    assert torch.equal(sampled, model.generate(**PAIR, max_length=12, pad_token_id=0, do_sample=True, top_k=5))

    expanded = {k: v.repeat_interleave(3, dim=0) for k, v in PAIR.items()}
    scorer = polyformer.BeamSearchScorer(batch_size=2, num_beams=3, device="cpu", max_length=12)
    beams = model.beam_search(expanded["input_ids"], scorer, stopping_criteria=criteria, pad_token_id=0,
                              eos_token_id=16, attention_mask=expanded["attention_mask"])
    assert torch.equal(beams, model.generate(**PAIR, max_length=12, pad_token_id=0, eos_token_id=16, num_beams=3))
    with pytest.raises(ValueError, match="length bound"):
        model.config.max_position_embeddings = None
        model.greedy_search(PAIR["input_ids"], stopping_criteria=polyformer.StoppingCriteriaList(), pad_token_id=0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(max_new_tokens=st.integers(-2, 4), num_beams=st.integers(-1, 3), do_sample=st.booleans(),
       temperature=st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2]), top_p=st.sampled_from([-0.5, 0.0, 0.3, 1.0, 1.5]))
def test_any_settings_either_generate_or_name_the_bad_argument(max_new_tokens, num_beams, do_sample, temperature,
                                                                top_p):
    bad = {name for name, wrong in (("max_new_tokens", max_new_tokens < 0), ("num_beams", num_beams < 1),
                                    ("temperature", do_sample and temperature <= 0),
                                    ("top_p", do_sample and not 0 < top_p <= 1)) if wrong}
    model = toy_model()
    call = dict(PAIR, pad_token_id=0, max_new_tokens=max_new_tokens, num_beams=num_beams, do_sample=do_sample,
                temperature=temperature, top_p=top_p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if bad:
            with pytest.raises(ValueError) as error:
                model.generate(**call)
            assert any(name in str(error.value) for name in bad)
        else:
            assert model.generate(**call).shape == (2, 6 + max_new_tokens)
