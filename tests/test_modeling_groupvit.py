"""GroupViT beyond the fixtures: bad input, training, configs, loading the towers, the Auto classes."""

import pytest
import torch

from helpers.parity import load_cases
from helpers.tolerance import assert_close
from polyformer import (AutoConfig, AutoModel, GroupViTConfig, GroupViTModel, GroupViTTextConfig, GroupViTTextModel,
                        GroupViTVisionConfig, GroupViTVisionModel)

CASE = next(c for c in load_cases("groupvit") if c.dir.name == "model" and c.call == "everything")


@pytest.fixture(scope="module")
def model():
    return GroupViTModel.from_pretrained(str(CASE.checkpoint)).eval()


def inputs(**changes):
    base = {k: v for k, v in CASE.inputs().items() if k in ("input_ids", "attention_mask", "pixel_values")}
    return {**base, **changes}


@pytest.mark.parametrize("changes, kwargs, error, match", [
    (dict(pixel_values=torch.zeros(3, 16, 16)), {}, ValueError, r"pixel_values must have 4 dimensions .*\[None\]"),
    (dict(pixel_values=torch.zeros(3, 1, 16, 16)), {}, ValueError, "pixel_values has 1 channels.*num_channels=3"),
    (dict(pixel_values=torch.zeros(3, 3, 16, 16, dtype=torch.uint8)), {}, TypeError, "pixel_values must be a float"),
    (dict(pixel_values=torch.zeros(3, 3, 16, 20)), {}, ValueError, r"\(16\*20\) doesn't match.*interpolate_pos_enc"),
    (dict(pixel_values=torch.zeros(3, 3, 3, 20)), {"interpolate_pos_encoding": True}, ValueError, "smaller than one"),
    (dict(input_ids=torch.zeros(3, 7)), {}, TypeError, "input_ids must hold integer"),
    (dict(input_ids=torch.full((3, 7), 99)), {}, IndexError, r"input_ids must lie in \[0, 99\)"),
    (dict(input_ids=torch.full((3, 7), -1)), {}, IndexError, "input_ids must lie"),
    (dict(input_ids=torch.ones(7, dtype=torch.long), attention_mask=None), {}, ValueError, "input_ids must have 2"),
    (dict(input_ids=torch.ones(3, 13, dtype=torch.long), attention_mask=None), {}, ValueError,
     "13 tokens, more than max_position_embeddings=12"),
    (dict(attention_mask=torch.ones(3, 6)), {}, ValueError, "attention_mask must have shape"),
    (dict(position_ids=torch.arange(6, 13)[None]), {}, IndexError, "position_ids must lie in"),
    (dict(pixel_values=torch.zeros(2, 3, 16, 16)), {"return_loss": True}, ValueError, "as many texts as images"),
])
def test_bad_input_names_the_argument(model, changes, kwargs, error, match):
    with pytest.raises(error, match=match):
        model(**inputs(**changes), **kwargs)


def test_towers_and_auto_classes_load_from_the_full_folder():
    path = str(CASE.checkpoint)
    assert GroupViTTextConfig.from_pretrained(path).hidden_size == 16
    assert GroupViTVisionConfig.from_pretrained(path).num_group_tokens == [4, 2, 0]
    assert type(AutoConfig.from_pretrained(path)) is GroupViTConfig and type(AutoModel.from_pretrained(path)) is GroupViTModel
    full = GroupViTModel.from_pretrained(path).eval()
    text, info = GroupViTTextModel.from_pretrained(path, output_loading_info=True)
    assert not info["missing_keys"] and all(k.startswith(("vision_model.", "visual_", "text_projection", "logit"))
                                            for k in info["unexpected_keys"])
    with torch.no_grad():
        assert_close(text(**{k: v for k, v in inputs().items() if k != "pixel_values"}).pooler_output,
                     full(**inputs()).text_model_output.pooler_output, atol=0, rtol=0)  # the same operations


def test_nested_outputs_and_tuple_layout(model):
    with torch.no_grad():
        out = model(**inputs(), return_loss=True, output_segmentation=True)
        tup = model(**inputs(), return_loss=True, output_segmentation=True, return_dict=False)
    assert list(out.keys())[:4] == ["loss", "logits_per_image", "logits_per_text", "segmentation_logits"]
    assert out.segmentation_logits.shape == (3, 3, 16, 16)
    assert out.vision_model_output.attentions[0].shape == (3, 4, 16)  # forced on by output_segmentation
    assert isinstance(tup[-1], tuple) and len(tup) == 8 and torch.equal(tup[3], out.segmentation_logits)


def test_sdpa_opt_in_agrees(model):
    sdpa = GroupViTModel.from_pretrained(str(CASE.checkpoint), attn_implementation="sdpa").eval()
    assert model.config.text_config._attn_implementation == "eager"
    assert sdpa.vision_model.encoder.stages[0].layers[0].self_attn.impl == "sdpa"
    with torch.no_grad():
        # the grouping's argmax amplifies SDPA's rounding (~3e-5 in segmentation_logits)
        assert_close(sdpa(**inputs()).logits_per_image, model(**inputs()).logits_per_image, atol=1e-4, rtol=1e-4)


def test_training_step_and_gradient_checkpointing():
    grads = []
    for checkpointing in (False, True):
        model = GroupViTModel.from_pretrained(str(CASE.checkpoint)).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        torch.manual_seed(0)  # the same gumbel noise
        loss = model(**inputs(), return_loss=True).loss
        loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters()})
    assert all(g is not None and torch.isfinite(g).all() and g.abs().max() > 0 for g in grads[0].values())
    for name, grad in grads[0].items():
        assert_close(grads[1][name], grad, atol=1e-6, rtol=1e-6, name=name)  # the forward recomputed


def test_fresh_models_and_configs():
    config = GroupViTConfig(text_config={"num_hidden_layers": 1, "hidden_size": 32, "num_attention_heads": 2},
                            vision_config={"depths": [1, 1, 1], "hidden_size": 32, "num_attention_heads": 2,
                                           "image_size": 32, "num_group_tokens": [8, 4, 0],
                                           "num_output_groups": [8, 4, 4]}, projection_intermediate_dim=64)
    model = GroupViTModel(config).eval()
    assert float(model.logit_scale.detach()) == pytest.approx(2.6592) and model.vision_model.embeddings.position_embeddings.eq(0).all()
    assert GroupViTConfig.from_dict(config.to_dict()) == config
    out = model(input_ids=torch.tensor([[49406, 320, 49407]]), pixel_values=torch.randn(1, 3, 32, 32),
                output_segmentation=True)
    assert out.segmentation_logits.shape == (1, 1, 32, 32) and out.image_embeds.norm().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="num_output_groups"):
        GroupViTVisionModel(GroupViTVisionConfig(depths=[1, 1], num_group_tokens=[4, 2], num_output_groups=[3, 2]))
    flat = GroupViTConfig(vision_config={"depths": [1], "num_group_tokens": [0], "num_output_groups": [0],
                                         "hidden_size": 32, "num_attention_heads": 2, "image_size": 32},
                          text_config={"num_hidden_layers": 1}, projection_intermediate_dim=16)
    with pytest.raises(ValueError, match="output_segmentation needs a grouping stage"):
        GroupViTModel(flat).eval()(input_ids=torch.tensor([[1, 2]]), pixel_values=torch.randn(1, 3, 32, 32),
                                   output_segmentation=True)
    with pytest.raises(ValueError, match="config.text_config is expected"):
        bad = GroupViTConfig()
        bad.text_config = GroupViTVisionConfig()
        GroupViTModel(bad)
