"""GroupViT (PyTorch) against transformers 4.37.2 fixtures in tests/fixtures/groupvit/.

Regenerate the fixtures with ``make fixtures`` (this family alone: ``.refvenv/bin/python scripts/fixtures/make_groupvit_fixtures.py``).
"""

import json

import pytest
import torch

from helpers.parity import _tensors, _resolve, assert_same, check_case, check_checkpoint, checkpoints, load_cases, params
from polyformer import GroupViTConfig, GroupViTModel, GroupViTModelOutput, GroupViTTextModel, GroupViTVisionModel
from polyformer.outputs import ModelOutput


class FlatGroupViTModel(GroupViTModel):
    """GroupViTModel with its nested tower outputs as tuples, the form the fixtures record them in."""

    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        if isinstance(out, tuple):
            return out
        assert [type(v).__name__ for v in (out.text_model_output, out.vision_model_output)] == \
            ["BaseModelOutputWithPooling"] * 2
        return GroupViTModelOutput(**{k: v.to_tuple() if isinstance(v, ModelOutput) else v for k, v in out.items()})


MODELS = {"GroupViTModel": FlatGroupViTModel, "GroupViTTextModel": GroupViTTextModel,
          "GroupViTVisionModel": GroupViTVisionModel}
CASES = load_cases("groupvit")
FEATURES = [(c, name) for c in checkpoints(CASES) for name in c.meta.get("features", {})]


@pytest.mark.parametrize("case", params(CASES))
def test_matches_reference(case):
    """Logits, loss, segmentation, embeddings, hidden states, grouping attentions and tuple layout to 1e-5."""
    check_case(MODELS[case.model_class], case)


@pytest.mark.parametrize("case", params(checkpoints(CASES)))
def test_checkpoint_layout(case, tmp_path):
    """Same state-dict keys (BatchNorm statistics included); config.json (nested sub-configs) as the reference's."""
    check_checkpoint(MODELS[case.model_class], case, tmp_path)
    model_cls = {"GroupViTModel": GroupViTModel}.get(case.model_class, MODELS[case.model_class])
    model_cls.from_pretrained(str(case.checkpoint)).save_pretrained(tmp_path / "saved")
    ours, reference = (json.loads((d / "config.json").read_text()) for d in (tmp_path / "saved", case.checkpoint))
    assert ours.pop("_name_or_path") == str(case.checkpoint) and ours == reference


@pytest.mark.parametrize("case, name", [pytest.param(c, n, id=f"{c.dir.name}/{n}") for c, n in FEATURES])
def test_features(case, name):
    """get_text_features / get_image_features, interpolate_pos_encoding, and a seeded train() forward (gumbel)."""
    spec = case.meta["features"][name]
    model = MODELS[case.model_class].from_pretrained(str(case.checkpoint)).eval()
    inputs = {k: _resolve(v, _tensors(case.dir)) for k, v in spec["inputs"].items()}
    with torch.no_grad():
        if spec["method"].startswith("get_"):
            out = getattr(model, spec["method"])(**inputs)
        elif name.startswith("interpolate"):
            out = model(**inputs, output_attentions=True, output_hidden_states=True, interpolate_pos_encoding=True)
        else:
            torch.manual_seed(7)
            out = model.train()(**inputs, output_attentions=True)
            out = (out.last_hidden_state, out.attentions)
    assert_same(out.to_tuple() if isinstance(out, ModelOutput) else out, _resolve(spec["output"], _tensors(case.dir)),
                name=f"{case.dir.name}/{name}")


@pytest.mark.parametrize("fact, make", [
    ("default_config_json", lambda: GroupViTConfig()),
    ("legacy_dicts_config_json", lambda: GroupViTConfig(text_config_dict={"hidden_size": 32}, vision_config={
        "depths": [2, 2], "hidden_size": 8}, vision_config_dict={"hidden_size": 24})),
])
def test_config_saves_as_the_reference(fact, make, tmp_path):
    make().save_pretrained(tmp_path)
    reference = next(c for c in CASES if c.dir.name == "model").facts[fact]
    assert json.loads((tmp_path / "config.json").read_text()) == {k: v for k, v in reference.items()
                                                                  if k != "transformers_version"}
