"""TFGroupViT*: parity with transformers 4.37.2's TF classes, features, segmentation, loss, the documented
(B, T) position_ids, Keras training with the contrastive loss."""

import numpy as np
import pytest

import polyformer
from helpers.parity import FIXTURES
from polyformer.tf.backend import keras, tf
from helpers.tf_parity import load_model, parity_tests, tf_cases, to_tf
from helpers.tolerance import assert_close

CASES = tf_cases("groupvit")
MODELS = {name: getattr(polyformer, name) for name in ("TFGroupViTModel", "TFGroupViTTextModel", "TFGroupViTVisionModel")}

test_parity, test_weight_names_are_the_references = parity_tests(CASES, MODELS)


def case(name):
    return next(c for c in CASES if c.id == name)


@pytest.fixture(scope="module")
def model():
    return load_model(MODELS["TFGroupViTModel"], case("model/everything"))


@pytest.mark.parametrize("name", ["text_features", "image_features"])
def test_features_equal_the_references(model, name):
    feature = case("model/plain").meta["features"][name]
    from helpers.parity import _resolve, _tensors

    inputs = {k: to_tf(_resolve(v, _tensors(case("model/plain").dir))) for k, v in feature["inputs"].items()}
    expected = _resolve(feature["output"], _tensors(case("model/plain").dir)).numpy()
    actual = getattr(model, feature["method"])(**inputs)
    assert_close(actual, expected)


def test_batch_position_ids_as_in_pytorch(model):
    """(B, T) position_ids: 4.37's TF embeddings fail on them (they tile the looked-up rows by B); as
    documented they are per-row positions, and the numbers are the PyTorch reference's."""
    from helpers.parity import assert_same, load_cases
    from helpers.tf_parity import to_torch

    differs = tf_cases("groupvit", differs=True)
    assert [c.id for c in differs] == ["model/position_ids"]
    pt = next(c for c in load_cases("groupvit") if c.id == "model/position_ids")
    out = to_torch(model(**{k: to_tf(v) for k, v in pt.inputs().items()}, return_dict=True))
    for field, expected in pt.expected().items():
        assert_same(getattr(out, field), expected, name=field)


def test_input_formats(model):
    inputs = {k: v.numpy() for k, v in case("model/plain").inputs().items()}
    expected = model(**inputs).logits_per_image.numpy()
    as_dict = model(dict(inputs)).logits_per_image.numpy()
    as_list = model([inputs["input_ids"], inputs["pixel_values"], inputs["attention_mask"]]).logits_per_image.numpy()
    assert_close(as_dict, expected, atol=1e-6, rtol=1e-6)  # one model, inputs passed another way
    assert_close(as_list, expected, atol=1e-6, rtol=1e-6)
    vision = load_model(MODELS["TFGroupViTVisionModel"], case("vision_model/plain"))
    assert_close(vision(inputs["pixel_values"]).pooler_output.numpy(),
                 vision(pixel_values=inputs["pixel_values"]).pooler_output.numpy(), atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="channels first"):
        vision(np.zeros((1, 16, 16, 3), np.float32))


def test_training_mode_draws_gumbel_noise_and_fits(model):
    """training=True: noisy hard assignments (still one group per token), batch statistics in the
    projections; Keras fit() asks for the contrastive loss."""
    inputs = {k: v.numpy() for k, v in case("model/plain").inputs().items()}
    out = model(**inputs, training=True, return_loss=True, output_attentions=True)
    assert np.isfinite(out.loss.numpy()).all() and out.loss.shape == (1,)
    trainee = MODELS["TFGroupViTModel"].from_pretrained(FIXTURES / "groupvit" / "model")
    moving_mean = trainee.groupvit.text_projection[1].moving_mean.numpy().copy()
    trainee.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)  # (tracing GroupViT's step takes 20 s)
    history = trainee.fit(tf.data.Dataset.from_tensor_slices(inputs).batch(3), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert not np.allclose(trainee.groupvit.text_projection[1].moving_mean.numpy(), moving_mean)


def test_save_h5_and_pytorch_safetensors(model, tmp_path):
    import torch

    inputs = {k: v.numpy() for k, v in case("model/plain").inputs().items()}
    expected = model(**inputs, output_segmentation=True)
    model.save_pretrained(tmp_path / "h5")
    reloaded = MODELS["TFGroupViTModel"].from_pretrained(tmp_path / "h5")
    np.testing.assert_array_equal(reloaded(**inputs, output_segmentation=True).segmentation_logits.numpy(),
                                  expected.segmentation_logits.numpy())
    model.save_pretrained(tmp_path / "pt", safe_serialization=True)
    torch_model = polyformer.GroupViTModel.from_pretrained(tmp_path / "pt")
    with torch.no_grad():
        torch_out = torch_model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
    assert_close(torch_out.logits_per_image.numpy(), expected.logits_per_image.numpy())
    text = MODELS["TFGroupViTTextModel"].from_pretrained(tmp_path / "h5")  # a tower from the pair's file
    assert_close(text(inputs["input_ids"], attention_mask=inputs["attention_mask"]).pooler_output.numpy(),
                 expected.text_model_output.pooler_output.numpy(), atol=1e-6, rtol=1e-6)
