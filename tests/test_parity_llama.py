"""Llama (PyTorch) against transformers 4.37.2 fixtures in tests/fixtures/llama/: grouped-query,
multi-query and plain attention, attention biases, rope_theta, rope_scaling linear and dynamic,
pretraining_tp.

Regenerate the fixtures with ``make fixtures`` (this family alone: ``.refvenv/bin/python scripts/fixtures/make_decoder_fixtures.py llama``).
"""

import pytest
import torch

from helpers.parity import cache_cases, check_cache_forms, check_case, check_checkpoint, check_training, load_cases, params
from helpers.tolerance import assert_close
from polyformer import LlamaConfig, LlamaForCausalLM, LlamaModel

MODELS = {cls.__name__: cls for cls in (LlamaModel, LlamaForCausalLM)}
CASES = load_cases("llama")


def test_fixtures_cover_every_class():
    assert {c.model_class for c in CASES} == set(MODELS)
    assert {c.dir.name for c in CASES} >= {"rope_linear", "rope_dynamic", "causal_lm_mqa", "causal_lm_mha_bias"}


@pytest.mark.parametrize("case", params(CASES))
def test_matches_reference(case):
    """Logits, losses, hidden states, attentions, past_key_values and tuple layout equal 4.37.2's to 1e-5
    (4.37's default for Llama is SDPA, whose mask lets left padding attend everywhere; eager cases too)."""
    check_case(MODELS[case.model_class], case)


@pytest.mark.parametrize("case", params(cache_cases(CASES)))
def test_cache_forms(case):
    check_cache_forms(MODELS[case.model_class], case)


@pytest.mark.parametrize("case", params(c for c in CASES if c.call in ("labels", "padded")))
def test_checkpoint_and_training(case, tmp_path):
    cls = MODELS[case.model_class]
    check_checkpoint(cls, case, tmp_path)
    if case.model_class == "LlamaForCausalLM" and case.dir.name in ("causal_lm", "causal_lm_mha_bias"):
        check_training(cls, case)


def test_config_defaults_and_rope_scaling_checks():
    config = LlamaConfig()
    assert (config.hidden_size, config.intermediate_size, config.num_hidden_layers) == (4096, 11008, 32)
    assert config.num_key_value_heads == config.num_attention_heads == 32
    assert (config.rope_theta, config.rope_scaling, config.rms_norm_eps, config.pretraining_tp) == (10000.0, None, 1e-6, 1)
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (1, 2, None)
    for bad in ({"type": "yarn", "factor": 2.0}, {"type": "linear", "factor": 1.0}, {"type": "linear", "factor": 2},
                {"type": "linear"}):
        with pytest.raises(ValueError, match="rope_scaling"):
            LlamaConfig(rope_scaling=bad)


def test_grouped_query_attention_is_attention_with_shared_heads():
    """A model with 2 key/value heads equals one with 4 whose k/v projections repeat each head twice."""
    torch.manual_seed(0)
    tiny = dict(vocab_size=50, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4)
    gqa = LlamaModel(LlamaConfig(num_key_value_heads=2, **tiny)).eval()
    mha = LlamaModel(LlamaConfig(num_key_value_heads=4, **tiny)).eval()
    state = gqa.state_dict()
    for name, tensor in state.items():
        if name.endswith(("k_proj.weight", "v_proj.weight")):  # (K*D, C) -> (H*D, C), head h uses h // 2
            state[name] = tensor.view(2, 8, 32).repeat_interleave(2, dim=0).reshape(32, 32)
    mha.load_state_dict(state)
    ids = torch.randint(0, 50, (2, 7))
    mask = torch.ones(2, 7, dtype=torch.long).index_fill_(1, torch.tensor([0, 1]), 0)
    with torch.no_grad():
        a, b = gqa(ids, attention_mask=mask), mha(ids, attention_mask=mask)
    assert_close(a.last_hidden_state, b.last_hidden_state, atol=1e-6, rtol=1e-6)  # the same numbers, other shapes
    assert a.past_key_values[0][0].shape == (2, 2, 7, 8) and b.past_key_values[0][0].shape == (2, 4, 7, 8)
