"""TFDistilBert*: parity with transformers 4.37.2's TF classes, input formats, Keras fit, save / load."""

import json
import shutil

import h5py
import numpy as np
import pytest

import polyformer
from helpers.parity import FIXTURES
from polyformer.tf.backend import keras, tf
from helpers.tf_parity import check_span_qa_clamps, load_model, params, parity_tests, tf_cases, to_tf
from helpers.tolerance import assert_close

CASES = tf_cases("distilbert")
MODELS = {name: getattr(polyformer, name) for name in (
    "TFDistilBertModel", "TFDistilBertForMaskedLM", "TFDistilBertForSequenceClassification",
    "TFDistilBertForMultipleChoice", "TFDistilBertForTokenClassification", "TFDistilBertForQuestionAnswering")}
TF_FIXTURES = FIXTURES / "tf" / "distilbert"


def case(name):
    return next(c for c in CASES if c.id == name)


test_parity, test_weight_names_are_the_references = parity_tests(CASES, MODELS)


# --- documented behaviour where 4.37's TF code differs ----------------------------------------------------
@pytest.mark.parametrize("case", params(tf_cases("distilbert", differs=True)))
def test_span_qa_clamps_and_ignores_positions_outside(case):
    check_span_qa_clamps(MODELS[case.model_class], case)


# --- inputs ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def seqcls():
    return load_model(MODELS["TFDistilBertForSequenceClassification"], case("seqcls_single_label/labels"))


def test_input_formats_agree(seqcls):
    inputs = case("seqcls_single_label/labels").inputs()
    ids, mask, labels = (inputs[k].numpy() for k in ("input_ids", "attention_mask", "labels"))
    expected = seqcls(input_ids=ids, attention_mask=mask, labels=labels)
    for out in (seqcls([ids, mask, None, None, None, None, True, labels]),
                seqcls({"input_ids": ids, "attention_mask": mask, "labels": labels}),
                seqcls(tf.constant(ids), attention_mask=tf.constant(mask, tf.int64), labels=labels)):
        assert_close(out.logits.numpy(), expected.logits.numpy(), atol=1e-6, rtol=1e-6)
        assert_close(out.loss.numpy(), expected.loss.numpy(), atol=1e-6, rtol=1e-6)
    single = seqcls(ids[:1]).logits  # a single tensor is input_ids
    assert_close(single.numpy(), seqcls(input_ids=ids[:1]).logits.numpy(), atol=1e-6, rtol=1e-6)


def test_graph_mode_gives_the_eager_numbers(seqcls):
    inputs = case("seqcls_single_label/labels").inputs()
    ids, mask = tf.constant(inputs["input_ids"].numpy()), tf.constant(inputs["attention_mask"].numpy())
    graph = tf.function(lambda i, m: seqcls(input_ids=i, attention_mask=m, output_hidden_states=True))(ids, mask)
    eager = seqcls(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    assert_close(graph.logits.numpy(), eager.logits.numpy(), atol=1e-6, rtol=1e-6)
    assert len(graph.hidden_states) == 3


def test_bad_input_is_refused(seqcls):
    ids = np.ones((2, 5), np.int32)
    with pytest.raises(ValueError, match="not supported by this model: \\['token_type_ids'\\]"):
        seqcls(input_ids=ids, token_type_ids=ids)
    with pytest.raises(ValueError, match="at most"):
        seqcls([ids] * 9)
    with pytest.raises(NotImplementedError, match="head_mask"):
        seqcls(input_ids=ids, head_mask=np.ones(4, np.float32))
    with pytest.raises(ValueError, match="one value per row"):
        seqcls(input_ids=ids, labels=np.zeros((2, 3), np.float32))
    with pytest.warns(FutureWarning, match="`inputs` argument is deprecated"):
        seqcls(inputs=ids)


def test_training_flag_switches_dropout(seqcls):
    ids = np.random.default_rng(0).integers(1, 99, (4, 9))
    eval_a, eval_b = seqcls(ids).logits, seqcls(ids, training=False).logits
    np.testing.assert_array_equal(eval_a.numpy(), eval_b.numpy())
    assert not np.allclose(seqcls(ids, training=True).logits.numpy(), eval_a.numpy())


# --- Keras training -------------------------------------------------------------------------------------
def test_fit_on_a_dataset_lowers_the_loss():
    """compile() without a loss + fit() on tf.data: the model's own loss (labels in the dataset's y) trains it."""
    keras.utils.set_random_seed(0)
    model = MODELS["TFDistilBertForSequenceClassification"].from_pretrained(str(FIXTURES / "distilbert" / "seqcls_single_label"))
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 99, (16, 9)).astype(np.int32)
    labels = ids[:, 1] % 3  # learnable from the second token
    features = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    before = float(np.mean(model(features, labels=labels).loss))
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(tf.data.Dataset.from_tensor_slices((features, labels)).batch(8), epochs=4, verbose=0)
    after = float(np.mean(model(features, labels=labels).loss))
    assert_close(model.evaluate(features, labels, verbose=0), after)
    assert all(np.isfinite(history.history["loss"]))
    assert after < 0.7 * before, (before, after, history.history["loss"])


def test_fit_with_labels_in_the_features_and_a_compiled_loss():
    """Labels inside the feature dict; a loss and metrics given to compile() apply to the logits."""
    model = MODELS["TFDistilBertForTokenClassification"].from_pretrained(str(FIXTURES / "distilbert" / "token_classification"))
    ids = np.random.default_rng(1).integers(1, 99, (4, 9)).astype(np.int32)
    data = tf.data.Dataset.from_tensor_slices({"input_ids": ids, "labels": ids % 2}).batch(2)
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
                  run_eagerly=True)  # (the traced step is the test above's)
    history = model.fit(data, epochs=1, verbose=0)
    assert set(history.history) == {"loss", "accuracy"} and np.isfinite(history.history["loss"][0])
    predictions = model.predict(data, verbose=0)
    assert predictions["logits"].shape == (4, 9, model.config.num_labels)


# --- weights --------------------------------------------------------------------------------------------
def test_reads_the_references_tf_model_h5():
    mlm = case("masked_lm/labels")
    model = MODELS["TFDistilBertForMaskedLM"].from_pretrained(str(TF_FIXTURES / "h5_masked_lm"))
    expected = load_model(MODELS["TFDistilBertForMaskedLM"], mlm)  # the same weights, converted from PyTorch
    inputs = {k: to_tf(v) for k, v in mlm.inputs().items()}
    assert_close(model(**inputs).logits.numpy(), expected(**inputs).logits.numpy(), atol=1e-6, rtol=1e-6)
    bare = MODELS["TFDistilBertModel"].from_pretrained(str(TF_FIXTURES / "h5_masked_lm"))
    assert bare.get_input_embeddings().table.shape == (99, 32)


def _h5_layout(path):
    with h5py.File(path, "r") as f:
        layers = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        return {layer: sorted(str(n.decode() if isinstance(n, bytes) else n).split("/", 1)[1]
                              for n in f[layer].attrs["weight_names"]) for layer in layers}


def test_save_pretrained_writes_the_references_h5_layout(tmp_path):
    model = MODELS["TFDistilBertForMaskedLM"].from_pretrained(str(TF_FIXTURES / "h5_masked_lm"))
    model.save_pretrained(tmp_path)
    assert _h5_layout(tmp_path / "tf_model.h5") == _h5_layout(TF_FIXTURES / "h5_masked_lm" / "tf_model.h5")
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == ["DistilBertForMaskedLM"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "tf_model.h5"]
    reloaded = MODELS["TFDistilBertForMaskedLM"].from_pretrained(tmp_path)
    ids = np.arange(1, 10)[None]
    np.testing.assert_array_equal(reloaded(ids).logits.numpy(), model(ids).logits.numpy())


def test_safetensors_in_pytorch_layout_load_in_pytorch(tmp_path):
    import torch

    for name in ("TFDistilBertModel", "TFDistilBertForQuestionAnswering"):
        pt_case = "model" if name == "TFDistilBertModel" else "question_answering"
        model = MODELS[name].from_pretrained(str(FIXTURES / "distilbert" / pt_case))
        model.save_pretrained(tmp_path / name, safe_serialization=True)
        torch_model = getattr(polyformer, name[2:]).from_pretrained(tmp_path / name)
        ids = np.random.default_rng(2).integers(1, 99, (2, 7))
        with torch.no_grad():
            expected = torch_model(torch.from_numpy(ids)).to_tuple()[0].numpy()
        assert_close(model(ids).to_tuple()[0].numpy(), expected)


def test_pytorch_weights_load_unless_h5_exists(tmp_path):
    shutil.copytree(FIXTURES / "distilbert" / "masked_lm", tmp_path / "both")
    shutil.copy(TF_FIXTURES / "h5_masked_lm" / "tf_model.h5", tmp_path / "both")
    with h5py.File(tmp_path / "both" / "tf_model.h5", "r+") as f:  # make the h5 distinguishable
        name = next(n for n in f["vocab_transform"].attrs["weight_names"])
        f["vocab_transform"][name][...] = 0.0
    cls = MODELS["TFDistilBertForMaskedLM"]
    assert not np.any(cls.from_pretrained(tmp_path / "both").vocab_transform.kernel.numpy())
    assert np.any(cls.from_pretrained(tmp_path / "both", from_pt=True).vocab_transform.kernel.numpy())
    model, info = cls.from_pretrained(FIXTURES / "distilbert" / "model", output_loading_info=True)
    assert info["missing_keys"] == ["vocab_transform.weight", "vocab_transform.bias", "vocab_layer_norm.weight",
                                    "vocab_layer_norm.bias", "vocab_projector.bias"]
    (tmp_path / "no_weights").mkdir()
    shutil.copy(tmp_path / "both" / "config.json", tmp_path / "no_weights")
    with pytest.raises(FileNotFoundError, match="tf_model.h5"):
        cls.from_pretrained(tmp_path / "no_weights")


def test_new_head_on_a_base_checkpoint():
    model = MODELS["TFDistilBertForSequenceClassification"].from_pretrained(str(FIXTURES / "distilbert" / "model"),
                                                                           num_labels=5)
    assert model(np.ones((2, 4), np.int32)).logits.shape == (2, 5)
    with pytest.raises(ValueError, match="ignore_mismatched_sizes"):
        MODELS["TFDistilBertForSequenceClassification"].from_pretrained(
            str(FIXTURES / "distilbert" / "seqcls_single_label"), num_labels=5)


def test_auto_classes():
    from polyformer import TFAutoModel, TFAutoModelForMaskedLM

    assert type(TFAutoModel.from_pretrained(FIXTURES / "distilbert" / "model")).__name__ == "TFDistilBertModel"
    assert type(TFAutoModelForMaskedLM.from_pretrained(TF_FIXTURES / "h5_masked_lm")).__name__ == "TFDistilBertForMaskedLM"
