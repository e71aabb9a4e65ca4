"""prune_heads against transformers 4.37.2 fixtures in tests/fixtures/pruning/.

Regenerate with ``.refvenv/bin/python scripts/fixtures/make_prune_fixtures.py``. Each case holds the
reference's pruned checkpoint (config.json with ``pruned_heads``) and the same model unpruned in unpruned/.
"""

import json

import pytest
import torch

from helpers.parity import assert_output, assert_tuple, check_case, load_cases, params, run
from polyformer import (
    CanineForSequenceClassification,
    CanineModel,
    CodeGenConfig,
    CodeGenModel,
    DistilBertConfig,
    DistilBertForMaskedLM,
    DistilBertForQuestionAnswering,
    DistilBertForSequenceClassification,
    DistilBertModel,
    GPTJConfig,
    GPTJModel,
    LlamaConfig,
    LlamaForCausalLM,
    PretrainedConfig,
)

MODELS = {cls.__name__: cls for cls in (DistilBertModel, DistilBertForSequenceClassification, DistilBertForMaskedLM,
                                        DistilBertForQuestionAnswering, CanineModel, CanineForSequenceClassification)}
CASES = load_cases("pruning")


def _int_keys(heads: dict) -> dict:
    return {int(k): v for k, v in heads.items()}


@pytest.mark.parametrize("case", params(CASES))
def test_pruned_checkpoint_matches_reference(case):
    """from_pretrained re-applies config.pruned_heads: the reference's pruned checkpoint gives its outputs."""
    check_case(MODELS[case.model_class], case)


@pytest.mark.parametrize("case", params(CASES))
def test_prune_heads_matches_reference(case):
    """polyformer's prune_heads on the unpruned model (each prune of the case in turn) gives the outputs of
    the reference's pruned model, and config.pruned_heads its union."""
    model = MODELS[case.model_class].from_pretrained(str(case.dir / "unpruned")).eval()
    for heads in case.facts["prunes"]:
        model.prune_heads(_int_keys(heads))
    assert model.config.pruned_heads == _int_keys(case.facts["pruned_heads"])
    output = run(model, case)
    if case.spec["returns"] == "tuple":
        assert_tuple(output, case)
    else:
        assert_output(output, case)


@pytest.mark.parametrize("case", params({c.dir: c for c in CASES}.values()))
def test_save_round_trip(case, tmp_path):
    """Pruned state-dict keys and shapes are the reference's; config.json holds the same pruned_heads (string
    keys), loading back gives ints, and the reloaded model the same outputs."""
    model = MODELS[case.model_class].from_pretrained(str(case.checkpoint)).eval()
    assert sorted(model.state_dict()) == sorted(case.facts["model"]["state_dict_keys"])
    model.save_pretrained(str(tmp_path))
    ours, reference = (json.loads((d / "config.json").read_text()) for d in (tmp_path, case.checkpoint))
    assert ours["pruned_heads"] == reference["pruned_heads"]
    reloaded = MODELS[case.model_class].from_pretrained(str(tmp_path)).eval()
    assert all(isinstance(k, int) for k in reloaded.config.pruned_heads)
    assert_output(run(reloaded, case, return_dict=True), case)


def test_config_keys_become_ints():
    config = PretrainedConfig.from_dict({"pruned_heads": {"0": [1, 2], "3": [0]}})
    assert config.pruned_heads == {0: [1, 2], 3: [0]}
    assert json.loads(config.to_json_string())["pruned_heads"] == {"0": [1, 2], "3": [0]}


def test_unpruned_config_json_has_no_pruned_heads(tmp_path):
    DistilBertConfig().save_pretrained(tmp_path)
    assert "pruned_heads" not in json.loads((tmp_path / "config.json").read_text())


def _tiny_distilbert():
    torch.manual_seed(0)
    return DistilBertModel(DistilBertConfig(vocab_size=50, dim=16, n_heads=4, n_layers=2, hidden_dim=20)).eval()


def test_pruned_head_matches_zero_head_mask():
    """Pruning a head equals masking it out (what the head mask does) on the same weights."""
    model = _tiny_distilbert()
    ids = torch.randint(0, 50, (2, 5), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 4)
    mask[0, 1] = mask[1, 3] = 0
    with torch.no_grad():
        masked = model(ids, head_mask=mask).last_hidden_state
        model.prune_heads({0: [1], 1: [3]})
        pruned = model(ids).last_hidden_state
    torch.testing.assert_close(pruned, masked, atol=1e-5, rtol=1e-5)
    assert model.transformer.layer[0].attention.q_lin.out_features == 12


def test_bad_arguments():
    model = _tiny_distilbert()
    with pytest.raises(TypeError, match="heads_to_prune must be a dict"):
        model.prune_heads([0, 1])
    with pytest.raises(ValueError, match=r"layer indices in \[0, 2\)"):
        model.prune_heads({2: [0]})
    with pytest.raises(ValueError, match=r"ints in \[0, 4\)"):
        model.prune_heads({0: [4]})
    with pytest.raises(ValueError, match="cannot prune every head"):
        model.prune_heads({0: [0, 1, 2, 3]})
    assert model.config.pruned_heads == {}


def test_prune_twice_is_idempotent():
    model = _tiny_distilbert()
    model.prune_heads({0: [1]})
    model.prune_heads({0: [1]})
    assert model.transformer.layer[0].attention.n_heads == 3
    assert model.config.pruned_heads == {0: [1]}


@pytest.mark.parametrize("build", [
    lambda: GPTJModel(GPTJConfig(vocab_size=64, n_embd=16, n_layer=1, n_head=2, rotary_dim=4, n_positions=32)),
    lambda: CodeGenModel(CodeGenConfig(vocab_size=64, n_embd=16, n_layer=1, n_head=4, rotary_dim=4, n_positions=32)),
    lambda: LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=24, num_hidden_layers=1,
                                         num_attention_heads=2)),
], ids=["gptj", "codegen", "llama"])
def test_unsupported_families_raise(build):
    """4.37 has no _prune_heads there (an AttributeError, recorded in the fixture facts): a clear error."""
    model = build()
    with pytest.raises(NotImplementedError, match="does not support prune_heads"):
        model.prune_heads({0: [0]})
    assert model.config.pruned_heads == {}


def test_reference_unsupported_list():
    facts = next(c for c in CASES if c.dir.name == "distilbert_model").facts["unsupported"]
    assert all(v["type"] == "AttributeError" and "_prune_heads" in v["message"] for v in facts.values())
