"""TF resize_token_embeddings (PyTorch's semantics) and DistilBERT prune_heads (outputs of 4.37.2's PyTorch
DistilBertModel pruned the same way: tests/fixtures/tf/surface/pruned_model)."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from helpers.parity import FIXTURES
from helpers.tolerance import assert_close
from polyformer import TFDistilBertForMaskedLM, TFDistilBertModel, TFGPTJForCausalLM, TFGPTJModel

PRUNED = FIXTURES / "tf" / "surface" / "pruned_model"
IDS = np.array([[5, 6, 7, 8, 60]], np.int32)


def test_resize_keeps_tied_weights_tied(tmp_path):
    model = TFDistilBertForMaskedLM.from_pretrained(FIXTURES / "distilbert" / "masked_lm")
    before = model(IDS).logits.numpy()
    table = model.resize_token_embeddings(120)
    assert table.shape == (120, 32) and model.config.vocab_size == 120
    assert model.vocab_projector.input_embeddings.word_embeddings.table is table  # one variable
    assert len(model.weights) == len({id(w) for w in model.weights})
    after = model(IDS).logits.numpy()
    assert after.shape == (1, 5, 120)
    # a wider output matrix is another matmul tiling: equal to float rounding, not bit for bit (AVX2 kernels)
    assert_close(after[..., :99], before, name="kept columns")
    np.testing.assert_array_equal(model.vocab_projector.bias.numpy()[99:], 0)
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["vocab_size"] == 120
    np.testing.assert_array_equal(TFDistilBertForMaskedLM.from_pretrained(tmp_path)(IDS).logits.numpy(), after)
    assert model.resize_token_embeddings() is table


def test_resize_an_untied_head_and_generate():
    model = TFGPTJForCausalLM.from_pretrained(FIXTURES / "gptj" / "causal_lm")
    before = model(IDS).logits.numpy()
    model.resize_token_embeddings(100, pad_to_multiple_of=16)  # 112 rows
    assert model.config.vocab_size == 112 and model.lm_head.kernel.shape == (32, 112)
    after = model(IDS).logits.numpy()
    assert_close(after[..., :99], before, name="kept columns")  # another tiling: float rounding only
    np.testing.assert_array_equal(model.lm_head.bias.numpy()[99:], 0)
    assert model.generate(IDS, max_new_tokens=2).shape == (1, 7)
    new = model.get_input_embeddings().table.numpy()[99:]
    assert 0 < np.abs(new).max() < 0.2  # drawn from N(0, initializer_range = 0.02)
    model.resize_token_embeddings(96)  # cut
    assert_close(model(IDS).logits.numpy(), before[..., :96], name="after the cut")
    with pytest.raises(ValueError, match="new_num_tokens"):
        model.resize_token_embeddings(0)


def test_pruned_checkpoint_loads_and_matches_the_reference():
    expected = load_file(str(PRUNED / "expected.safetensors"))
    model = TFDistilBertModel.from_pretrained(PRUNED)
    out = model(expected["input_ids"], attention_mask=expected["attention_mask"]).last_hidden_state.numpy()
    assert_close(out, expected["last_hidden_state"])


def test_prune_heads_in_two_calls_then_save(tmp_path):
    expected = load_file(str(PRUNED / "expected.safetensors"))
    model = TFDistilBertModel.from_pretrained(FIXTURES / "distilbert" / "model")
    model.prune_heads({0: [0]})
    model.prune_heads({0: [2, 0], "1": [1, 2, 3]})  # head 0 of layer 0 is gone already
    pruned = json.loads((PRUNED / "config.json").read_text())["pruned_heads"]
    assert model.config.pruned_heads == {int(k): v for k, v in pruned.items()}
    assert model.distilbert.transformer.layer[1].attention.q_lin.kernel.shape == (32, 8)
    run = lambda m: m(expected["input_ids"], attention_mask=expected["attention_mask"]).last_hidden_state.numpy()  # noqa: E731
    assert_close(run(model), expected["last_hidden_state"])
    model.save_pretrained(tmp_path)
    assert_close(run(TFDistilBertModel.from_pretrained(tmp_path)), expected["last_hidden_state"])


def test_prune_heads_is_refused_where_4_37_has_none():
    model = TFGPTJModel.from_pretrained(FIXTURES / "gptj" / "model")
    with pytest.raises(NotImplementedError, match="cannot prune heads"):
        model.prune_heads({0: [0]})
