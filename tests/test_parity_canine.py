"""CANINE (PyTorch) against transformers 4.37.2 fixtures in tests/fixtures/canine/, and its bad input.

Regenerate the fixtures with ``make fixtures`` (this family alone: ``.refvenv/bin/python scripts/fixtures/make_canine_fixtures.py``).
"""

import json

import pytest
import torch
from safetensors.torch import load_file

from helpers.parity import check_case, check_checkpoint, checkpoints, load_cases, params, training_cases
from helpers.parity import FIXTURES
from helpers.tolerance import assert_close
from polyformer import (
    CanineConfig,
    CanineLayer,
    CanineForMultipleChoice,
    CanineForQuestionAnswering,
    CanineForSequenceClassification,
    CanineForTokenClassification,
    CanineModel,
)
from polyformer.pt.masks import padding_mask

MODELS = {cls.__name__: cls for cls in (CanineModel, CanineForSequenceClassification, CanineForMultipleChoice,
                                        CanineForTokenClassification, CanineForQuestionAnswering)}
CASES = load_cases("canine")


def test_fixtures_cover_every_class():
    assert {c.model_class for c in CASES} == set(MODELS)
    assert {c.model_class for c in training_cases(CASES)} == set(MODELS) - {"CanineModel"}


@pytest.mark.parametrize("case", params(CASES))
def test_matches_reference(case):
    """Outputs, losses, hidden states, attentions and tuple layout equal 4.37.2's to 1e-5 (SDPA where no
    weights are asked for; the reference is eager only)."""
    check_case(MODELS[case.model_class], case)


@pytest.mark.parametrize("case", params(c for c in CASES if not c.raises and not c.load_kwargs and c.call == "plain"))
def test_eager_matches_reference(case):
    check_case(MODELS[case.model_class], case.with_load_kwargs(attn_implementation="eager"))


@pytest.mark.parametrize("case", params(checkpoints(CASES)))
def test_checkpoint_layout(case, tmp_path):
    """Same state-dict keys, config.json as the reference's, save_pretrained round-trips."""
    check_checkpoint(MODELS[case.model_class], case, tmp_path)
    ours, reference = (json.loads((d / "config.json").read_text()) for d in (tmp_path, case.checkpoint))
    assert ours.pop("_name_or_path") == str(case.checkpoint) and ours == reference


# Parameters a head's loss cannot reach: the pooler (heads on characters), or the upsampling and final
# character encoder (heads on the pooled [CLS] molecule). The same holds in the reference.
UNUSED = {"pooler": ("canine.pooler.",), "characters": ("canine.projection.", "canine.final_char_encoder.")}


@pytest.mark.parametrize("case", params(training_cases(CASES)))
def test_training_step(case):
    """A finite loss, finite gradients on exactly the parameters the head uses, and an Adam step that moves them."""
    pooled = case.model_class in ("CanineForSequenceClassification", "CanineForMultipleChoice")
    unused = UNUSED["characters" if pooled else "pooler"]
    torch.manual_seed(0)
    model = MODELS[case.model_class].from_pretrained(str(case.checkpoint)).train()
    loss = model(**case.inputs(), return_dict=True).loss
    assert torch.isfinite(loss)
    loss.backward()
    params_ = dict(model.named_parameters())
    for name, param in params_.items():
        assert (param.grad is None) == name.startswith(unused), f"{name}: has a gradient: {param.grad is not None}"
        assert param.grad is None or torch.isfinite(param.grad).all(), name
    before = {name: p.detach().clone() for name, p in params_.items()}
    torch.optim.Adam(model.parameters(), lr=1e-3).step()
    moved = {name for name, p in params_.items() if not torch.equal(before[name], p.detach())}
    assert moved == {name for name, p in params_.items() if p.grad is not None and p.grad.abs().max() > 0}


def test_model_without_pooler_keeps_its_tuple_place():
    case = next(c for c in CASES if c.dir.name == "model" and c.call == "plain")
    model = CanineModel.from_pretrained(str(case.checkpoint), add_pooling_layer=False).eval()
    out = model(**case.inputs(), return_dict=False)
    assert case.facts["no_pooler_tuple"] == ["Tensor", None] and out[1] is None and len(out) == 2
    assert_close(out[0], case.expected()["last_hidden_state"])


def test_default_config_saves_as_the_reference(tmp_path):
    reference = next(c for c in CASES if c.dir.name == "model").facts["default_config_json"]
    CanineConfig().save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved == {k: v for k, v in reference.items() if k != "transformers_version"}
    config = CanineConfig()
    assert (config.hidden_size, config.num_hidden_layers, config.max_position_embeddings, config.num_hash_buckets,
            config.local_transformer_stride, config.bos_token_id, config.eos_token_id) == (768, 12, 16384, 16384, 128,
                                                                                           0xE000, 0xE001)


def test_gradient_checkpointing_gives_the_same_gradients():
    case = next(c for c in CASES if c.dir.name == "question_answering" and c.call == "positions")
    grads = []
    for checkpointing in (False, True):
        model = CanineForQuestionAnswering.from_pretrained(str(case.checkpoint)).train()
        torch.manual_seed(0)  # the same dropout masks (recomputation restores the generator's state)
        if checkpointing:
            model.gradient_checkpointing_enable()
        model(**case.inputs(), return_dict=True).loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        assert_close(grads[0][name], grads[1][name], atol=1e-6, rtol=1e-6, name=name)  # the forward recomputed


LAYER = json.loads((FIXTURES / "canine" / "layer" / "layer.json").read_text())


@pytest.mark.parametrize("call", sorted(LAYER["calls"]))
def test_layer_local_attention_options(call):
    """CanineLayer's window options (wider key windows, key 0 in every window, position 0 seeing every key),
    which CanineModel does not use, against the reference's layer: output and the first window's weights."""
    spec, tensors = LAYER["calls"][call], load_file(str(FIXTURES / "canine" / "layer" / "io.safetensors"))
    layer = CanineLayer(CanineConfig(**LAYER["config"]), **spec["options"]).eval()
    layer.load_state_dict({k[len("weights."):]: v for k, v in tensors.items() if k.startswith("weights.")})
    if "raises" in spec:
        with pytest.raises(ValueError, match="windows"):
            layer(torch.zeros(1, 13, 16), None, None, False)
        return
    x, mask = (tensors[key] for key in spec["inputs"])
    with torch.no_grad():
        out, weights = layer(x, padding_mask(mask, x.dtype), None, True)
    assert_close(out, tensors[spec["outputs"][0]])
    assert_close(weights, tensors[spec["outputs"][1]])


TINY = CanineConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=4, intermediate_size=20,
                    max_position_embeddings=32, num_hash_functions=4, num_hash_buckets=24, local_transformer_stride=8)


@pytest.mark.parametrize("inputs, error, match", [
    (dict(input_ids=torch.tensor([[0xE000, 0x110000, 65, 66]])), ValueError, r"input_ids .*Unicode"),
    (dict(input_ids=torch.tensor([[0xE000, -1, 65, 66]])), ValueError, r"input_ids .*Unicode"),
    (dict(input_ids=torch.full((1, 33), 65)), ValueError, "max_position_embeddings=32"),
    (dict(input_ids=torch.full((1, 28), 65)), ValueError, "num_hash_buckets"),
    (dict(input_ids=torch.full((1, 3), 65)), ValueError, "downsampling_rate=4"),
    (dict(input_ids=torch.full((1, 8), 65), token_type_ids=torch.full((1, 8), 16)), ValueError, "type_vocab_size"),
    (dict(input_ids=torch.full((1, 8), 65), position_ids=torch.arange(20, 28)[None]), ValueError, "position_ids"),
    (dict(input_ids=torch.full((1, 8), 65), attention_mask=torch.ones(1, 7)), ValueError, "attention_mask"),
    (dict(input_ids=torch.full((1, 8), 65.0)), TypeError, "input_ids"),
    (dict(inputs_embeds=torch.zeros(1, 8, 15)), ValueError, "inputs_embeds"),
])
def test_bad_input_names_the_argument(inputs, error, match):
    """Where the reference hashes out-of-Unicode ids silently or fails deep inside torch."""
    with pytest.raises(error, match=match):
        CanineModel(TINY)(**inputs)


def test_bad_configs():
    with pytest.raises(ValueError, match="num_hash_functions"):
        CanineModel(CanineConfig(**{**TINY.to_dict(), "num_hash_functions": 3}))
    with pytest.raises(ValueError, match="num_labels should be 2"):
        CanineForQuestionAnswering(CanineConfig(hidden_size=16, num_attention_heads=4, num_labels=3))
    with pytest.raises(ValueError, match="flash_attention_2"):
        CanineModel(CanineConfig(**{**TINY.to_dict(), "attn_implementation": "flash_attention_2"}))
