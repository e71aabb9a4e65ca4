"""What the decoders share: the KV cache forms, cached decoding, masks, pooling, bad input, Auto classes.

Uses the tiny checkpoints of tests/fixtures/{codegen,gptj,llama}/ (written by transformers 4.37.2).
"""

import json
from pathlib import Path

import pytest
import torch

from helpers.tolerance import assert_close
from polyformer import (AutoConfig, AutoModel, AutoModelForCausalLM, CodeGenForCausalLM, DynamicCache, GPTJConfig,
                        GPTJForCausalLM, GPTJForSequenceClassification, LlamaForCausalLM, StaticCache)
from polyformer.pt.cache import BLOCK
from polyformer.pt.heads import causal_lm_loss, last_token_pool
from polyformer.pt.masks import causal_mask

FIXTURES = Path(__file__).parent / "fixtures"
CAUSAL_LMS = {"codegen": CodeGenForCausalLM, "gptj": GPTJForCausalLM, "llama": LlamaForCausalLM}


def load(family, case="causal_lm", **kwargs):
    return CAUSAL_LMS[family].from_pretrained(FIXTURES / family / case, **kwargs).eval()


def prompts(family):
    spec = json.loads((FIXTURES / family / "generate" / "generate.json").read_text())
    return spec, torch.tensor(spec["inputs"]["input_ids"]), torch.tensor(spec["inputs"]["attention_mask"])


@torch.no_grad()
def greedy(model, ids, mask, steps, cache="legacy", eos=2, pad=0):
    """Greedy decoding as 4.37's generate() does it for left-padded prompts, with the cache in one form."""
    past = {"legacy": None, "none": None, "dynamic": DynamicCache(model.config.num_hidden_layers)}.get(cache)
    if cache == "static":
        config = model.config
        heads = getattr(config, "num_key_value_heads", config.num_attention_heads)
        past = StaticCache(config.num_hidden_layers, ids.shape[0], heads,
                           config.hidden_size // config.num_attention_heads, ids.shape[1] + steps)
    done = torch.zeros(ids.shape[0], dtype=torch.bool)
    new = ids
    for _ in range(steps):
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
        if cache == "none":
            out = model(ids, attention_mask=mask, position_ids=positions, use_cache=False)
        else:
            out = model(new, attention_mask=mask, position_ids=positions[:, -new.shape[1]:], past_key_values=past,
                        use_cache=True)
            past = out.past_key_values
        token = out.logits[:, -1].argmax(-1).masked_fill(done, pad)
        done |= token == eos
        new = token[:, None]
        ids, mask = torch.cat([ids, new], 1), torch.cat([mask, torch.ones_like(new)], 1)
    return ids


@pytest.mark.parametrize("family", sorted(CAUSAL_LMS))
@pytest.mark.parametrize("cache", ["legacy", "dynamic", "static", "none"])
def test_greedy_decoding_reproduces_reference_generate(family, cache):
    """A greedy loop with each cache form (and without a cache) gives 4.37 generate()'s ids exactly."""
    spec, ids, mask = prompts(family)
    expected = spec["runs"]["greedy"]["sequences"]
    assert greedy(load(family), ids, mask, len(expected[0]) - ids.shape[1], cache).tolist() == expected


@pytest.mark.parametrize("family", sorted(CAUSAL_LMS))
def test_cached_and_uncached_logits_agree(family):
    """Prefix + one token at a time with a cache gives the logits of one full forward (real tokens)."""
    model = load(family)
    _, ids, mask = prompts(family)
    ids = torch.cat([ids, torch.tensor([[5, 6, 7], [8, 9, 10]])], 1)
    mask = torch.cat([mask, torch.ones(2, 3, dtype=torch.long)], 1)
    with torch.no_grad():
        full = model(ids, attention_mask=mask).logits
        out = model(ids[:, :6], attention_mask=mask[:, :6])
        steps = [out.logits]
        for t in range(6, 9):
            out = model(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], past_key_values=out.past_key_values)
            steps.append(out.logits)
    real = mask.bool()
    assert_close(torch.cat(steps, 1)[real], full[real])


def test_static_cache_is_written_in_place_and_bounded():
    cache = StaticCache(2, batch=1, n_kv_heads=2, head_dim=4, max_length=5)
    buffers = [(k.data_ptr(), v.data_ptr()) for k, v in zip(cache.keys, cache.values)]
    for seen, length in ((0, 3), (3, 2)):
        for layer in range(2):
            k, v = cache.update(layer, torch.randn(1, 2, length, 4), torch.randn(1, 2, length, 4))
            assert k.shape == v.shape == (1, 2, seen + length, 4)
            assert (k.untyped_storage().data_ptr(), v.untyped_storage().data_ptr()) == buffers[layer]
    assert cache.seen == 5 and [(k.data_ptr(), v.data_ptr()) for k, v in zip(cache.keys, cache.values)] == buffers
    with pytest.raises(ValueError, match="StaticCache holds 5 positions"):
        cache.update(0, torch.randn(1, 2, 1, 4), torch.randn(1, 2, 1, 4))
    with pytest.raises(ValueError, match="do not fit"):
        StaticCache(1, 1, 2, 4, 8).update(0, torch.randn(2, 2, 1, 4), torch.randn(2, 2, 1, 4))


def test_static_cache_grows_in_blocks_and_keeps_what_it_holds():
    cache = StaticCache(1, batch=2, n_kv_heads=1, head_dim=3, max_length=10**6)
    assert cache.capacity == BLOCK  # not max_length
    first = torch.randn(2, 1, BLOCK - 1, 3)
    cache.update(0, first, first)
    assert cache.capacity == BLOCK
    more = torch.randn(2, 1, 2, 3)
    k, _ = cache.update(0, more, more)
    assert cache.capacity == 2 * BLOCK and cache.seen == BLOCK + 1
    assert torch.equal(k, torch.cat([first, more], dim=2))
    assert cache.reserve(5 * BLOCK + 1) and cache.capacity == 6 * BLOCK  # at least double, whole blocks
    writer = cache.at(torch.tensor([cache.seen]))
    keys, _ = writer.update(0, torch.ones(2, 1, 1, 3), torch.ones(2, 1, 1, 3))
    assert keys.shape == (2, 1, 6 * BLOCK, 3) and bool((keys[:, :, BLOCK + 1] == 1).all())
    assert torch.equal(keys[:, :, : BLOCK + 1], torch.cat([first, more], dim=2))


@pytest.mark.parametrize("form", ["dynamic", "static"])
def test_reorder_selects_batch_rows(form):
    past = tuple((torch.randn(3, 2, 4, 5), torch.randn(3, 2, 4, 5)) for _ in range(2))
    if form == "dynamic":
        cache = DynamicCache.from_legacy(past, 2)
    else:
        cache = StaticCache(2, 3, 2, 5, 9)
        for i, (k, v) in enumerate(past):
            cache.update(i, k, v)
    beam_idx = torch.tensor([2, 2, 0])
    cache.reorder(beam_idx)
    for (k, v), (k0, v0) in zip(cache.to_legacy(), past):
        assert torch.equal(k, k0[beam_idx]) and torch.equal(v, v0[beam_idx])
    assert cache.seen == 4


def test_an_empty_cache_is_falsy_as_in_4_37():
    cache = DynamicCache(2)
    assert not cache and len(cache) == 0
    for i in range(2):
        cache.update(i, torch.zeros(1, 1, 3, 2), torch.zeros(1, 1, 3, 2))
    assert cache and len(cache) == 2 and cache.seen == 3


def test_legacy_past_is_checked():
    with pytest.raises(ValueError, match="has 1 layers, the model has 2"):
        DynamicCache.from_legacy(((torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4)),), 2)
    with pytest.raises(ValueError, match="one shape"):
        DynamicCache.from_legacy(((torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 2, 4)),), 1)
    with pytest.raises(ValueError, match="empty"):
        DynamicCache(2).to_legacy()
    model = load("gptj")
    with pytest.raises(TypeError, match="past_key_values must be a Cache or a tuple"):
        model(torch.tensor([[3]]), past_key_values=torch.zeros(2, 2, 1, 4, 1, 8))
    with pytest.raises(ValueError, match="the cache has 3 layers, the model has 2"):
        model(torch.tensor([[3]]), past_key_values=DynamicCache(3))


@pytest.mark.parametrize("family", sorted(CAUSAL_LMS))
def test_bad_input_names_the_argument(family):
    model = load(family)
    ids = torch.tensor([[3, 4, 5]])
    with pytest.raises(IndexError, match=r"input_ids must lie in \[0, 99\)"):
        model(torch.tensor([[3, 99]]))
    with pytest.raises(TypeError, match="input_ids must hold integer"):
        model(ids.float())
    with pytest.raises(ValueError, match="input_ids must have 2 dimensions"):
        model(ids[0])
    with pytest.raises(ValueError, match=r"attention_mask must have shape .* \(1, 0 \+ 3\)"):
        model(ids, attention_mask=torch.ones(1, 4))
    past = model(ids).past_key_values
    with pytest.raises(ValueError, match=r"attention_mask must have shape .* \(1, 3 \+ 1\)"):
        model(ids[:, :1], past_key_values=past, attention_mask=torch.ones(1, 1))
    with pytest.raises(ValueError, match=r"position_ids must have shape"):
        model(ids, position_ids=torch.arange(4)[None])
    with pytest.raises(IndexError, match="position_ids must lie in"):
        model(ids, position_ids=torch.tensor([[0, -1, 2]]))
    with pytest.raises(ValueError, match="inputs_embeds must be a 3-D tensor"):
        model(inputs_embeds=torch.zeros(1, 3, 7))


@pytest.mark.parametrize("family", ["codegen", "gptj"])
def test_positions_are_limited_by_n_positions(family):
    model = load(family)  # n_positions 64
    with pytest.raises(ValueError, match="exceed the 64 positions"):
        model(torch.full((1, 65), 3))
    past = model(torch.full((1, 60), 3)).past_key_values
    with pytest.raises(ValueError, match="60 cached \\+ 5 new tokens exceed the 64 positions"):
        model(torch.full((1, 5), 3), past_key_values=past)
    with pytest.raises(IndexError, match=r"position_ids must lie in \[0, 64\)"):
        model(torch.full((1, 2), 3), position_ids=torch.tensor([[0, 64]]))
    with pytest.raises(IndexError, match="token_type_ids must lie in"):
        model(torch.full((1, 2), 3), token_type_ids=torch.tensor([[0, 100]]))


def test_llama_has_no_position_limit():
    model = load("llama")  # max_position_embeddings 64: rotary extends past it, as in the reference
    assert model(torch.full((1, 70), 3)).logits.shape == (1, 70, 99)


def test_causal_mask_values():
    """Future keys and padding: what each family's fill rule gives (float32)."""
    low = torch.finfo(torch.float32).min
    assert causal_mask(None, 4, 0, torch.float32) == (None, True)
    assert causal_mask(torch.ones(2, 5), 1, 4, torch.float32) == (None, False)
    mask, is_causal = causal_mask(None, 2, 3, torch.float32)
    assert not is_causal and mask.shape == (1, 1, 2, 5) and mask[0, 0, 0].tolist() == [0, 0, 0, 0, low]
    padding = torch.tensor([[0, 1, 1]])
    filled, _ = causal_mask(padding, 3, 0, torch.float32)
    assert filled[0, 0].tolist() == [[low, low, low], [low, 0, low], [low, 0, 0]]
    stacked, _ = causal_mask(padding, 3, 0, torch.float32, stack=True)
    assert stacked[0, 0, 0].tolist() == [low, low, low]
    middle, _ = causal_mask(torch.tensor([[1, 0, 1]]), 3, 0, torch.float32, stack=True)
    assert middle[0, 0, 0].tolist() == [0, float("-inf"), low]  # future and padded overflows
    gptj, _ = causal_mask(padding, 3, 0, torch.float32, mask_then_scale_dim=64, stack=True)  # min / sqrt(64)
    assert gptj[0, 0, 0].tolist() == [low, low / 8, low / 8]
    unmasked, _ = causal_mask(padding, 3, 0, torch.float32, unmask_unattended=True)
    assert unmasked[0, 0, 0].tolist() == [0, 0, 0] and torch.equal(unmasked[0, 0, 1:], filled[0, 0, 1:])


def test_last_token_pool_follows_4_37():
    x = torch.arange(2 * 4).view(2, 4, 1)
    ids = torch.tensor([[5, 6, 0, 0], [0, 0, 7, 8]])  # right-padded row, left-padded row
    assert last_token_pool(x, ids, 0).view(-1).tolist() == [1, 7]  # left padding: position T - 1
    assert last_token_pool(x[:1], None, None).view(-1).tolist() == [3]
    with pytest.raises(ValueError, match="Cannot handle batch sizes > 1 if no padding token is defined"):
        last_token_pool(x, ids, None)


def test_causal_lm_loss_shifts_and_ignores():
    logits = torch.randn(1, 3, 5)
    labels = torch.tensor([[4, -100, 2]])
    expected = torch.nn.functional.cross_entropy(logits[0, 1:2], torch.tensor([2]))
    assert_close(causal_lm_loss(logits, labels), expected)


def test_auto_classes_resolve_the_decoders():
    for family, cls in CAUSAL_LMS.items():
        path = FIXTURES / family / "causal_lm"
        assert type(AutoConfig.from_pretrained(path)).__name__ == cls.__name__.replace("ForCausalLM", "Config")
        assert type(AutoModelForCausalLM.from_pretrained(path)) is cls
        assert type(AutoModel.from_pretrained(path)).__name__ == cls.__name__.replace("ForCausalLM", "Model")
    config = GPTJConfig(hidden_size=64, num_attention_heads=4, num_hidden_layers=3, max_position_embeddings=32)
    assert (config.n_embd, config.n_head, config.n_layer, config.n_positions) == (64, 4, 3, 32)


def test_seqcls_pools_before_the_first_pad():
    model = GPTJForSequenceClassification.from_pretrained(FIXTURES / "gptj" / "seqcls").eval()
    ids = torch.tensor([[5, 6, 7, 0, 0]])
    with torch.no_grad():
        pooled = model(ids).logits
        direct = model(ids[:, :3]).logits
    assert_close(pooled, direct, atol=1e-6, rtol=1e-6)  # the same tokens, in a batch of another length


@pytest.mark.parametrize("family", sorted(CAUSAL_LMS))
def test_bfloat16_runs_close_to_float32(family):
    _, ids, mask = prompts(family)
    with torch.no_grad():
        fp32 = load(family)(ids, attention_mask=mask).logits
        bf16 = load(family, torch_dtype=torch.bfloat16)(ids, attention_mask=mask).logits
    real = mask.bool()
    assert bf16.dtype == torch.float32  # logits are returned in float32, as in the reference
    assert (bf16[real] - fp32[real]).abs().max() < 0.1


@pytest.mark.parametrize("family", sorted(CAUSAL_LMS))
def test_gradient_checkpointing_gives_the_same_gradients(family):
    _, ids, mask = prompts(family)
    grads = []
    for checkpointing in (False, True):
        model = load(family).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        out = model(ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100))
        assert (out.past_key_values is None) == checkpointing  # no cache while recomputing layers
        out.loss.backward()
        grads.append([p.grad for p in model.parameters()])
    for a, b in zip(*grads):
        assert_close(a, b, atol=1e-6, rtol=1e-6)  # the forward recomputed: the same operations
