"""Flax DistilBERT against transformers 4.37.2's Flax classes (tests/fixtures/flax/distilbert/), and the
Flax plumbing: PyTorch <-> Flax weights, msgpack files, dtypes, jit.

Regenerate the fixtures with ``make fixtures`` (this family alone: ``.refvenv/bin/python scripts/fixtures/make_flax_fixtures.py``).
"""

import json

import numpy as np
import pytest
import torch

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

from helpers.flax_parity import check_flax_case, model_for, numpy_inputs  # noqa: E402
from helpers.parity import FIXTURES, load_cases, params  # noqa: E402
from helpers.tolerance import assert_close  # noqa: E402
from polyformer import (  # noqa: E402
    DistilBertForMaskedLM,
    FlaxDistilBertForMaskedLM,
    FlaxDistilBertForMultipleChoice,
    FlaxDistilBertForQuestionAnswering,
    FlaxDistilBertForSequenceClassification,
    FlaxDistilBertForTokenClassification,
    FlaxDistilBertModel,
)
from polyformer.jx.convert import flatten, flax_to_pt  # noqa: E402

MODELS = {cls.__name__: cls for cls in (
    FlaxDistilBertModel, FlaxDistilBertForMaskedLM, FlaxDistilBertForSequenceClassification,
    FlaxDistilBertForMultipleChoice, FlaxDistilBertForTokenClassification, FlaxDistilBertForQuestionAnswering)}
CASES = load_cases("flax/distilbert")
BY_ID = {c.id: c for c in CASES}
MLM = FIXTURES / "distilbert" / "masked_lm"


def calls_of(case):
    return {c.call: c for c in CASES if c.dir == case.dir}


def test_fixtures_cover_every_class():
    assert {c.model_class for c in CASES} == set(MODELS)


@pytest.mark.parametrize("case", params(CASES))
def test_matches_reference(case):
    """Outputs, hidden states, attentions and the tuple layout (attentions before hidden states, the
    multiple-choice head's dropped entry) equal 4.37.2's Flax classes to 1e-5."""
    check_flax_case(MODELS[case.model_class], case, calls_of(case))


def test_reference_msgpack_loads_as_converted_pytorch_weights():
    """flax_model.msgpack written by 4.37.2 holds exactly the params converted from the PyTorch file."""
    case = BY_ID["masked_lm_msgpack/padded"]
    from_msgpack = flatten(FlaxDistilBertForMaskedLM.from_pretrained(str(case.dir)).params)
    assert sorted("/".join(k) for k in from_msgpack) == case.facts["saved_params"]
    converted = flatten(FlaxDistilBertForMaskedLM.from_pretrained(str(MLM)).params)
    assert from_msgpack.keys() == converted.keys()
    for key, value in from_msgpack.items():
        assert np.array_equal(np.asarray(value), np.asarray(converted[key])), key


@pytest.mark.parametrize("tied", [True, False])
def test_round_trip_pytorch_flax_msgpack_flax_pytorch_is_bit_identical(tmp_path, tied):
    folder = MLM if tied else FIXTURES / "distilbert" / "masked_lm_untied"
    torch_model = DistilBertForMaskedLM.from_pretrained(str(folder))
    flax_model = FlaxDistilBertForMaskedLM.from_pretrained(str(folder))
    flax_model.save_pretrained(tmp_path)
    assert (tmp_path / "flax_model.msgpack").is_file()
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["DistilBertForMaskedLM"]
    reloaded = FlaxDistilBertForMaskedLM.from_pretrained(str(tmp_path))
    state = {k: torch.from_numpy(np.array(v)) for k, v in flax_to_pt(flatten(reloaded.params)).items()}
    fresh = DistilBertForMaskedLM.from_pretrained(str(folder))
    with torch.no_grad():
        for p in fresh.parameters():
            p.zero_()
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    assert not unexpected and missing == (["vocab_projector.weight"] if tied else [])
    for key, value in torch_model.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key


def test_bare_model_and_head_checkpoints_swap_prefix(tmp_path):
    head = FlaxDistilBertForMaskedLM.from_pretrained(str(MLM))
    head.save_pretrained(tmp_path)
    base = FlaxDistilBertModel.from_pretrained(str(tmp_path))  # msgpack with the distilbert/ prefix
    assert flatten(base.params).keys() == {k[1:] for k in flatten(head.params) if k[0] == "distilbert"}
    seqcls = FlaxDistilBertForSequenceClassification.from_pretrained(str(FIXTURES / "distilbert" / "model"))
    assert {"pre_classifier", "classifier", "distilbert"} == set(seqcls.params)


def test_sharded_and_safetensors_saves_load_back(tmp_path):
    model = FlaxDistilBertForMaskedLM.from_pretrained(str(MLM))
    model.save_pretrained(tmp_path / "sharded", max_shard_size=20_000)
    index = json.loads((tmp_path / "sharded" / "flax_model.msgpack.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    model.save_pretrained(tmp_path / "safe", safe_serialization=True)
    for folder in ("sharded", "safe"):
        again = flatten(FlaxDistilBertForMaskedLM.from_pretrained(str(tmp_path / folder)).params)
        for key, value in flatten(model.params).items():
            assert np.array_equal(np.asarray(again[key]), np.asarray(value)), (folder, key)
    model.save_pretrained(tmp_path / "sharded")  # one file again: the shards and index go
    assert sorted(p.name for p in (tmp_path / "sharded").glob("flax_model*")) == ["flax_model.msgpack"]


def test_pytorch_bin_and_sharded_safetensors_convert():
    reference = flatten(FlaxDistilBertForMaskedLM.from_pretrained(str(MLM)).params)
    for case in ("masked_lm_bin", "masked_lm_sharded"):
        other = flatten(FlaxDistilBertForMaskedLM.from_pretrained(str(FIXTURES / "distilbert" / case)).params)
        assert other.keys() == reference.keys()


def test_jit_grad_and_functional_params():
    case = BY_ID["seqcls/plain"]
    model = model_for(FlaxDistilBertForSequenceClassification, case)
    inputs = numpy_inputs(case)
    eager = model(**inputs, output_hidden_states=True)
    out = jax.jit(lambda p, ids, mask: model(ids, mask, params=p, output_hidden_states=True))(
        model.params, inputs["input_ids"], inputs["attention_mask"])
    assert type(out).__name__ == "FlaxSequenceClassifierOutput" and list(out.keys()) == ["logits", "hidden_states"]
    assert_close(np.asarray(out.logits), np.asarray(eager.logits))
    grads = jax.grad(lambda p: model(**inputs, params=p).logits.sum())(model.params)
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(model.params)
    doubled = jax.tree_util.tree_map(lambda x: 2 * x, model.params)
    assert not np.allclose(np.asarray(model(**inputs, params=doubled).logits), np.asarray(model(**inputs).logits))


def test_dropout_only_when_training():
    case = BY_ID["token_classification/plain"]
    model = model_for(FlaxDistilBertForTokenClassification, case)
    inputs = numpy_inputs(case)
    eval_logits = np.asarray(model(**inputs).logits)
    np.testing.assert_array_equal(np.asarray(model(**inputs, dropout_rng=jax.random.PRNGKey(1)).logits), eval_logits)
    train = [np.asarray(model(**inputs, train=True, dropout_rng=jax.random.PRNGKey(s)).logits) for s in (1, 1, 2)]
    np.testing.assert_array_equal(train[0], train[1])
    assert not np.allclose(train[0], eval_logits) and not np.allclose(train[0], train[2])


def test_bfloat16_compute_and_params():
    case = BY_ID["masked_lm/plain"]
    inputs = numpy_inputs(case)
    expected = case.expected()["logits"].numpy()
    model = FlaxDistilBertForMaskedLM.from_pretrained(str(MLM), dtype=jnp.bfloat16)
    assert {v.dtype for v in jax.tree_util.tree_leaves(model.params)} == {np.dtype("float32")}  # params untouched
    logits = model(**inputs).logits
    assert logits.dtype == jnp.bfloat16
    assert_close(np.asarray(logits, np.float32), expected, atol=0.25, rtol=0.05)  # bfloat16 compute vs float32
    model.params = model.to_bf16(model.params)
    assert {v.dtype for v in jax.tree_util.tree_leaves(model.params)} == {np.dtype(jnp.bfloat16)}
    assert_close(np.asarray(model(**inputs).logits, np.float32), expected, atol=0.5, rtol=0.1)  # bfloat16 weights too
    mask = jax.tree_util.tree_map(lambda x: x.ndim > 1, model.params)  # keep biases and norms in fp32
    half = model.to_fp32(model.params, mask=jax.tree_util.tree_map(lambda m: not m, mask))
    kinds = {(v.ndim > 1, v.dtype) for v in jax.tree_util.tree_leaves(half)}
    assert kinds == {(True, np.dtype(jnp.bfloat16)), (False, np.dtype("float32"))}
    assert {v.dtype for v in jax.tree_util.tree_leaves(model.to_fp16(half))} == {np.dtype("float16")}


def test_lazy_init_returns_params(tmp_path):
    model, loaded = FlaxDistilBertForSequenceClassification.from_pretrained(
        str(FIXTURES / "distilbert" / "model"), _do_init=False)
    with pytest.raises(ValueError, match="_do_init=False"):
        model.params
    assert "classifier" not in loaded and {("classifier", "kernel"), ("classifier", "bias")} <= model._missing_keys
    params = model.init_weights(model.key, (1, 1), loaded)
    out = model(np.array([[5, 6, 7]]), params=params)
    assert out.logits.shape == (1, 2)
    fresh = FlaxDistilBertModel(FlaxDistilBertModel.from_pretrained(str(MLM)).config, input_shape=(2, 3), seed=3)
    assert fresh.params["embeddings"]["word_embeddings"]["embedding"].shape == (99, 32)


def test_errors(tmp_path):
    (tmp_path / "config.json").write_text((MLM / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="no weights found"):
        FlaxDistilBertModel.from_pretrained(str(tmp_path))
    model = FlaxDistilBertForMaskedLM.from_pretrained(str(MLM))
    with pytest.raises(ValueError, match="parameters are missing"):
        model.params = {"distilbert": model.params["distilbert"]}
    (tmp_path / "flax_model.msgpack").write_bytes(b"not msgpack at all")
    with pytest.raises(OSError, match="msgpack"):
        FlaxDistilBertForMaskedLM.from_pretrained(str(tmp_path))
    with pytest.raises(ValueError, match="other shapes"):
        FlaxDistilBertForSequenceClassification.from_pretrained(
            str(FIXTURES / "distilbert" / "seqcls_single_label"), num_labels=5)
    resized = FlaxDistilBertForSequenceClassification.from_pretrained(
        str(FIXTURES / "distilbert" / "seqcls_single_label"), num_labels=5, ignore_mismatched_sizes=True)
    assert resized.params["classifier"]["kernel"].shape == (32, 5)
