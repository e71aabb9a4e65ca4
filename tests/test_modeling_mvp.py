"""MVP beyond the recorded calls: the config as the reference saves it, lightweight tuning at RUCAIBox/mvp's size,
the eos-count rule, bad input, EncoderDecoderCache, the generation hooks (a greedy loop on a static cache gives
the reference's generate() ids), resizing, Auto classes."""

import json
from pathlib import Path

import pytest
import torch

from helpers.parity import load_cases, load_model
from polyformer import (AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForQuestionAnswering,
                        AutoModelForSeq2SeqLM, AutoModelForSequenceClassification, DynamicCache, EncoderDecoderCache,
                        MvpConfig, MvpForCausalLM, MvpForConditionalGeneration, MvpForSequenceClassification, MvpModel,
                        StaticCache)

FIXTURES = Path(__file__).parent / "fixtures" / "mvp"
CASES = {c.id: c for c in load_cases("mvp")}
TINY = dict(vocab_size=99, d_model=16, encoder_layers=3, decoder_layers=2, encoder_attention_heads=4,
            decoder_attention_heads=2, encoder_ffn_dim=23, decoder_ffn_dim=19, max_position_embeddings=20)


def checkpoint(name: str, cls=MvpForConditionalGeneration):
    return cls.from_pretrained(str(FIXTURES / name)).eval()


@pytest.mark.parametrize("name", sorted(json.loads((FIXTURES / "configs" / "configs.json").read_text())))
def test_config_saved_like_the_reference(name, tmp_path):
    case = json.loads((FIXTURES / "configs" / "configs.json").read_text())[name]
    with pytest.warns(UserWarning) if name == "force_bos" else _nothing():
        config = MvpConfig(**case["kwargs"])
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved == {k: v for k, v in case["saved"].items() if k != "transformers_version"}
    assert MvpConfig.from_pretrained(tmp_path).to_dict() == {**config.to_dict(), "_name_or_path": str(tmp_path)}


def _nothing():
    import contextlib

    return contextlib.nullcontext()


def test_config_aliases_and_defaults():
    config = MvpConfig()
    assert (config.hidden_size, config.num_attention_heads, config.num_hidden_layers) == (1024, 16, 12)
    assert (config.decoder_start_token_id, config.forced_eos_token_id, config.use_prompt) == (2, 2, False)
    assert AutoConfig.for_model("mvp", d_model=8).hidden_size == 8


def test_lightweight_tuning_at_the_size_of_rucaibox_mvp():
    """The documented counts: 468,116,832 trainable parameters with prompts, 61,823,328 after tuning set."""
    with torch.device("meta"):
        model = MvpForConditionalGeneration(MvpConfig(use_prompt=True))
    assert model.num_parameters(only_trainable=True) == 468_116_832
    model.set_lightweight_tuning()
    assert model.num_parameters(only_trainable=True) == 61_823_328
    with pytest.raises(ValueError, match="use_prompt=True"):
        MvpModel(MvpConfig(**TINY)).set_lightweight_tuning()
    with pytest.raises(AttributeError, match="no prompts"):
        MvpForCausalLM(MvpConfig(**TINY, use_prompt=True)).set_lightweight_tuning()


def test_sequence_classification_pools_the_last_eos_and_needs_as_many_in_every_row():
    model = checkpoint("seqcls", MvpForSequenceClassification)
    case = CASES["seqcls/no_labels"]
    ids, mask = case.inputs()["input_ids"], case.inputs()["attention_mask"]
    with torch.no_grad():
        base = model(input_ids=ids, attention_mask=mask).logits
        more = ids.clone()
        more[:, 1] = 2  # a second </s> in every row, before the last: the last is pooled
        assert not torch.equal(model(input_ids=more, attention_mask=mask).logits, base)
    uneven = ids.clone()
    uneven[0, 1] = 2
    with pytest.raises(ValueError, match="same number of <eos> tokens"):
        model(input_ids=uneven, attention_mask=mask)
    with pytest.raises(ValueError, match="no <eos> token"):
        model(input_ids=ids.masked_fill(ids == 2, 5), attention_mask=mask)
    with pytest.raises(NotImplementedError, match="input embeddings"):
        model(inputs_embeds=torch.zeros(3, 7, 16))


def test_bad_input_fails_clearly():
    model = checkpoint("model", MvpModel)
    ids = torch.tensor([[0, 5, 6, 2]])
    with pytest.raises(ValueError, match="`input_ids` cannot be `None`"):
        model(inputs_embeds=torch.zeros(1, 4, 16))  # the reference refuses it too: nothing to shift
    with pytest.raises(ValueError, match="max_position_embeddings=20"):
        model(input_ids=torch.full((1, 21), 5))
    with pytest.raises(ValueError, match="max_position_embeddings=20"):
        model(input_ids=ids, decoder_input_ids=torch.full((1, 21), 5))
    with pytest.raises(IndexError, match="vocab_size"):
        model(input_ids=torch.tensor([[0, 99, 2]]))
    with pytest.raises(ValueError, match="head_mask.*3 layers"):
        model(input_ids=ids, head_mask=torch.ones(2, 4))
    with pytest.raises(ValueError, match="cross_attn_head_mask.*2 layers"):
        model(input_ids=ids, cross_attn_head_mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="attention_mask must have shape"):
        model(input_ids=ids, attention_mask=torch.ones(1, 5))
    with pytest.raises(ValueError, match="encoder states"):
        model(decoder_input_ids=ids, encoder_outputs=(torch.zeros(2, 4, 16),))
    with pytest.raises(TypeError, match="encoder_outputs"):
        model(decoder_input_ids=ids, encoder_outputs=torch.zeros(1, 4, 16))
    with pytest.raises(ValueError, match="past_key_values"):
        model(input_ids=ids, past_key_values=((torch.zeros(1, 2, 3, 8),) * 3,) * 2)


def test_encoder_decoder_cache():
    k = torch.randn(2, 3, 4, 5)
    cache = EncoderDecoderCache(StaticCache(2, 2, 3, 5, 8))
    calls = []
    for layer in range(2):
        cache.update(layer, k, k + 1)
        for _ in range(2):
            cross = cache.cross_kv(layer, lambda: calls.append(layer) or (k * 2, k * 3))
    assert calls == [0, 1] and cache.seen == 4 and len(cache) == 2 and torch.equal(cross[1], k * 3)
    legacy = cache.to_legacy()
    assert [len(layer) for layer in legacy] == [4, 4] and torch.equal(legacy[1][2], k * 2)
    cache.reorder(torch.tensor([1, 1]))
    assert torch.equal(cache.to_legacy()[0][0], k[[1, 1]]) and torch.equal(cache.cross[0][0], k[[1, 1]] * 2)
    again = EncoderDecoderCache.from_legacy(legacy, 2)
    assert isinstance(again.self_attention, DynamicCache) and again.seen == 4
    assert [len(layer) for layer in EncoderDecoderCache.from_legacy([(k, k)] * 2, 2).to_legacy()] == [2, 2]
    with pytest.raises(ValueError, match="layers"):
        EncoderDecoderCache.from_legacy([(k, k, k)] * 2, 2)


@pytest.mark.parametrize("name", ["generate", "generate_prompt"])
def test_greedy_loop_on_a_static_cache_gives_the_references_ids(name):
    """What encoder-decoder generate() does: the encoder once, then one decoder token a step with an
    EncoderDecoderCache (from `_init_generation_cache`) and the encoder outputs; the last step forced to eos."""
    spec = json.loads((FIXTURES / name / "generate.json").read_text())
    model = MvpForConditionalGeneration.from_pretrained(str(FIXTURES / name / spec["checkpoint"])).eval()
    ids, mask = (torch.tensor(spec["inputs"][k]) for k in ("input_ids", "attention_mask"))
    expected = spec["runs"]["greedy"]["sequences"]
    steps = len(expected[0]) - 1
    cache = model._init_generation_cache(len(ids), steps)
    tokens = torch.full((len(ids), 1), model.config.decoder_start_token_id)
    with torch.no_grad():
        encoded = model.get_encoder()(input_ids=ids, attention_mask=mask, return_dict=True)
        for step in range(steps):
            inputs = model.prepare_inputs_for_generation(tokens, past_key_values=cache, attention_mask=mask,
                                                         use_cache=True, encoder_outputs=encoded)
            out = model(**inputs, return_dict=True)
            assert out.past_key_values is cache and cache.seen == step + 1
            best = out.logits[:, -1].argmax(-1) if step < steps - 1 else torch.full((len(ids),), 2)
            tokens = torch.cat([tokens, best[:, None]], dim=1)
    assert tokens.tolist() == expected


def test_resize_token_embeddings_keeps_ties_and_final_logits_bias():
    model = checkpoint("conditional_generation")
    bias = model.final_logits_bias.clone()
    model.resize_token_embeddings(103)
    assert model.final_logits_bias.shape == (1, 103) and torch.equal(model.final_logits_bias[:, :99], bias)
    assert not model.final_logits_bias[:, 99:].any()
    shared = model.model.shared.weight
    assert model.lm_head.weight is shared and model.model.encoder.embed_tokens.weight is shared
    assert model.model.decoder.embed_tokens.weight is shared and model.config.vocab_size == 103
    with torch.no_grad():
        assert model(input_ids=torch.tensor([[0, 101, 2]])).logits.shape == (1, 3, 103)


def test_auto_classes_and_accessors(tmp_path):
    case = CASES["conditional_generation/labels"]
    model = load_model(MvpForConditionalGeneration, case)
    assert model.get_encoder() is model.model.encoder and model.get_decoder() is model.model.decoder
    assert type(AutoModelForSeq2SeqLM.from_pretrained(str(case.checkpoint))) is MvpForConditionalGeneration
    assert type(AutoModel.from_pretrained(str(case.checkpoint))) is MvpModel
    for auto, name in ((AutoModelForSequenceClassification, "MvpForSequenceClassification"),
                       (AutoModelForQuestionAnswering, "MvpForQuestionAnswering"), (AutoModelForCausalLM, "MvpForCausalLM")):
        assert type(auto.from_config(MvpConfig(**TINY))).__name__ == name
    assert set(model.dummy_inputs) == {"input_ids", "attention_mask"}


def test_gradient_checkpointing_and_layerdrop():
    torch.manual_seed(0)
    model = MvpForConditionalGeneration(MvpConfig(**TINY, use_prompt=True, prompt_length=2, prompt_mid_dim=4)).train()
    model.gradient_checkpointing_enable()
    ids = torch.tensor([[0, 5, 6, 7, 2], [0, 8, 9, 2, 1]])
    loss = model(input_ids=ids, attention_mask=(ids != 1).long(), labels=ids).loss
    loss.backward()
    assert torch.isfinite(loss) and model.model.encoder.self_attn_prompt.prompt_embedding.weight.grad.abs().sum() > 0
    encoder = MvpModel(MvpConfig(**TINY, encoder_layerdrop=1.0, dropout=0.0)).encoder
    hidden = encoder.train()(ids, output_hidden_states=True).hidden_states
    assert all(torch.equal(h, hidden[0]) for h in hidden)  # every layer skipped in training
    hidden = encoder.eval()(ids, output_hidden_states=True).hidden_states
    assert not torch.equal(hidden[-1], hidden[0])
