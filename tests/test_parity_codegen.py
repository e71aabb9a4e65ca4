"""CodeGen (PyTorch) against transformers 4.37.2 fixtures in tests/fixtures/codegen/.

Regenerate the fixtures with ``make fixtures`` (this family alone: ``.refvenv/bin/python scripts/fixtures/make_decoder_fixtures.py codegen``).
"""

import pytest
import torch

from helpers.parity import cache_cases, check_cache_forms, check_case, check_checkpoint, check_training, load_cases, params
from polyformer import CodeGenConfig, CodeGenForCausalLM, CodeGenModel, GPTJConfig

MODELS = {cls.__name__: cls for cls in (CodeGenModel, CodeGenForCausalLM)}
CASES = load_cases("codegen")


def test_fixtures_cover_every_class():
    assert {c.model_class for c in CASES} == set(MODELS)


@pytest.mark.parametrize("case", params(CASES))
def test_matches_reference(case):
    """Logits, losses, hidden states, attentions, past_key_values and tuple layout equal 4.37.2's to 1e-5."""
    check_case(MODELS[case.model_class], case)


@pytest.mark.parametrize("case", params(c for c in CASES if not c.raises and not c.load_kwargs))
def test_eager_matches_reference(case):
    """4.37 CodeGen is eager-only; polyformer's eager path gives its numbers too."""
    check_case(MODELS[case.model_class], case.with_load_kwargs(attn_implementation="eager"))


@pytest.mark.parametrize("case", params(cache_cases(CASES)))
def test_cache_forms(case):
    check_cache_forms(MODELS[case.model_class], case)


@pytest.mark.parametrize("case", params(c for c in CASES if c.call == "labels" or c.call == "padded"))
def test_checkpoint_and_training(case, tmp_path):
    cls = MODELS[case.model_class]
    check_checkpoint(cls, case, tmp_path)
    if case.model_class == "CodeGenForCausalLM":
        check_training(cls, case)


def test_config_defaults_and_layout():
    config = CodeGenConfig()
    assert (config.n_embd, config.n_layer, config.n_head, config.rotary_dim, config.n_ctx) == (4096, 28, 16, 64, 2048)
    assert config.max_position_embeddings == 2048 and config.hidden_size == 4096 and not config.tie_word_embeddings
    assert config.activation_function == "gelu_new" and config.bos_token_id == config.eos_token_id == 50256
    assert CodeGenConfig(n_head=6, n_embd=48).to_dict()["model_type"] == "codegen"
    assert GPTJConfig().to_dict().keys() - {"model_type"} == CodeGenConfig().to_dict().keys() - {"model_type", "n_ctx"}
    with pytest.raises(ValueError, match="divisible by 4"):
        CodeGenModel(CodeGenConfig(n_embd=48, n_head=6, rotary_dim=4, n_layer=1, vocab_size=10))


def test_qkv_projection_splits_in_four_shards():
    """Shard m of qkv_proj's output holds [q | v | k] for heads m*H/4 .. (m+1)*H/4 - 1."""
    torch.manual_seed(0)
    model = CodeGenModel(CodeGenConfig(n_embd=32, n_head=8, rotary_dim=2, n_layer=1, vocab_size=10)).eval()
    attn = model.h[0].attn
    x = torch.randn(1, 3, 32)
    q, k, v = attn.project(x)  # (B, H, T, D)
    out = attn.qkv_proj(x).view(1, 3, 4, 3, 2, 4)  # (B, T, shard, [q v k], heads per shard, D)
    for head in range(8):
        shard, local = divmod(head, 2)
        assert torch.equal(q[0, head], out[0, :, shard, 0, local])
        assert torch.equal(v[0, head], out[0, :, shard, 1, local])
        assert torch.equal(k[0, head], out[0, :, shard, 2, local])
