"""IDEFICS beyond the fixtures: images encoded once per generate() call (greedy, beams, no cache), the freeze
options, bad input, the config, tied vocabularies, what polyformer does where 4.37 fails (generate without a
cache, "normal" float gates, a decode step without position_ids)."""

import pytest
import torch

from helpers.parity import load_cases, load_model, run
from helpers.tolerance import assert_close
from polyformer import AutoConfig, AutoModel, IdeficsConfig, IdeficsForVisionText2Text, IdeficsModel

VISION = dict(embed_dim=16, image_size=10, patch_size=5, num_hidden_layers=1, num_attention_heads=2,
              intermediate_size=20)
TINY = dict(vocab_size=50, additional_vocab_size=2, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
            num_attention_heads=2, vision_config=VISION,
            perceiver_config=dict(resampler_n_latents=2, resampler_depth=1, resampler_n_heads=2, resampler_head_dim=4))


def tiny(cls=IdeficsForVisionText2Text, seed=0, **overrides):
    torch.manual_seed(seed)
    model = cls(IdeficsConfig(**{**TINY, **overrides})).eval()
    with torch.no_grad():  # open the gates so that the images matter
        for layer in model.get_decoder().gated_cross_attn_layers if cls is IdeficsForVisionText2Text else model.gated_cross_attn_layers:
            layer.alpha_cross_attn.fill_(1.0)
            layer.alpha_dense.fill_(1.0)
    return model


def prompt(batch=2, length=5, images=2, size=10):
    torch.manual_seed(1)
    ids = torch.randint(3, 52, (batch, length))
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[1, :2], ids[1, :2] = 0, 0
    image_mask = torch.zeros(batch, length, images, dtype=torch.long)
    image_mask[:, 2:, 0], image_mask[0, 4:, 1] = 1, 1
    return dict(input_ids=ids, attention_mask=mask, pixel_values=torch.rand(batch, images, 3, size, size),
                image_attention_mask=image_mask)


def count_calls(*modules):
    calls = []
    handles = [m.register_forward_hook(lambda *_: calls.append(1)) for m in modules]
    return calls, handles


@pytest.mark.parametrize("use_resampler", [False, True])
@pytest.mark.parametrize("kwargs", [dict(), dict(num_beams=3, num_return_sequences=2), dict(use_cache=False),
                                    dict(do_sample=True, num_return_sequences=2)])
def test_generate_encodes_images_once(use_resampler, kwargs):
    model = tiny(use_resampler=use_resampler)
    modules = [model.model.vision_model] + ([model.model.perceiver_resampler] if use_resampler else [])
    encoded, handles = count_calls(*modules)
    projected, more = count_calls(*(layer.cross_attn.k_proj for layer in model.model.gated_cross_attn_layers))
    steps, last = count_calls(model)
    try:
        out = model.generate(**prompt(), max_new_tokens=4, pad_token_id=0, **kwargs)
    finally:
        for handle in handles + more + last:
            handle.remove()
    assert len(encoded) == len(modules)  # one run of the vision encoder (and perceiver) per call
    n_cross = len(model.model.gated_cross_attn_layers)
    # with a cache each cross-attention layer projects the images once per call, else once per step
    assert len(projected) == n_cross * (len(steps) if kwargs.get("use_cache") is False else 1)
    assert out.shape[1] == 5 + 4


def test_generate_without_cache_gives_the_cached_ids():
    """4.37 fails here (the image mask is cut to one row while the whole sequence is fed again)."""
    model = tiny()
    cached = model.generate(**prompt(), max_new_tokens=6, pad_token_id=0)
    assert torch.equal(model.generate(**prompt(), max_new_tokens=6, pad_token_id=0, use_cache=False), cached)
    # ... and a manual greedy loop on forward() agrees: generated tokens see the prompt's last image row
    inputs = prompt()
    ids, mask, image_mask = inputs["input_ids"], inputs["attention_mask"], inputs["image_attention_mask"]
    for _ in range(6):
        logits = model(input_ids=ids, attention_mask=mask, pixel_values=inputs["pixel_values"],
                       image_attention_mask=image_mask).logits
        ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], 1)
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], 1)
        image_mask = torch.cat([image_mask, image_mask[:, -1:]], 1)
    assert torch.equal(ids, cached)


def test_images_change_the_answer_and_the_image_mask_gates_them():
    model = tiny(cls=IdeficsModel)
    inputs = prompt()
    base = model(**inputs).last_hidden_state
    other = model(**{**inputs, "pixel_values": torch.rand_like(inputs["pixel_values"])}).last_hidden_state
    seen = inputs["image_attention_mask"].any(-1)  # (B, T): tokens that see an image
    blind = ~seen & inputs["attention_mask"].bool()  # real tokens before any image (padding sees everything)
    assert not torch.allclose(base[seen], other[seen])
    assert_close(base[blind], other[blind], atol=0, rtol=0)  # no image: gated to zero, the same operations


def test_freeze_options():
    model = tiny(freeze_text_layers=True, freeze_vision_layers=True, freeze_lm_head=True)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith(("model.layers.", "model.norm", "model.vision_model.")) for n in trainable)
    assert "model.embed_tokens.weight" not in trainable and "lm_head.weight" not in trainable
    assert {"model.embed_tokens.additional_embedding.weight", "lm_head.additional_fc.weight"} <= trainable
    assert any(n.startswith("model.gated_cross_attn_layers.") for n in trainable)  # never frozen by these options

    model = tiny(freeze_vision_module_exceptions=["LayerNorm"], freeze_text_module_exceptions=["Linear"])
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert "model.vision_model.pre_layrnorm.weight" in trainable and "model.layers.0.mlp.up_proj.weight" in trainable
    assert "model.vision_model.encoder.layers.0.mlp.fc1.weight" not in trainable
    assert "model.layers.0.input_layernorm.weight" not in trainable  # an RMSNorm is not a "LayerNorm"

    model = tiny(freeze_text_layers=False, freeze_vision_layers=False)
    assert all(p.requires_grad for p in model.parameters())
    model.model.freeze_vision_layers()
    assert not any(p.requires_grad for p in model.model.vision_model.parameters())
    with pytest.raises(ValueError, match="module_exceptions"):
        model.model.freeze_text_layers(["Conv2d"])


def test_frozen_parameters_get_no_gradient():
    model = tiny(freeze_lm_head=True).train()
    inputs = prompt()
    model(**inputs, labels=inputs["input_ids"]).loss.backward()
    assert model.lm_head.weight.grad is None and model.model.embed_tokens.weight.grad is None
    assert model.lm_head.additional_fc.weight.grad is not None
    assert model.model.gated_cross_attn_layers[0].alpha_dense.grad is not None


def test_bad_image_input_fails_naming_the_argument():
    model = tiny(cls=IdeficsModel)
    inputs = prompt()
    pixels = inputs["pixel_values"]
    cases = [
        (dict(pixel_values=pixels[:, 0]), ValueError, "pixel_values must have 5 dimensions"),
        (dict(pixel_values=pixels[:, :, :1]), ValueError, "pixel_values has 1 channels"),
        (dict(pixel_values=torch.rand(2, 2, 3, 15, 15)), ValueError, "interpolate_pos_encoding=True"),
        (dict(pixel_values=pixels[:, :1]), ValueError, "image_attention_mask names 2 images per row"),
        (dict(image_attention_mask=inputs["image_attention_mask"][:, :3]), ValueError, "one row per new token"),
        (dict(pixel_values=pixels[:1]), ValueError, "images are given for 1 rows, the text has 2"),
        (dict(pixel_values=None), ValueError, "Exactly 1 of pixel_values"),
        (dict(pixel_values=None, image_encoder_embeddings=torch.rand(2, 2, 5, 15)), ValueError,
         "image_encoder_embeddings must have shape"),
        (dict(input_ids=torch.full((2, 5), 52)), IndexError, "input_ids must lie in [0, 52)"),
        (dict(input_ids=None), ValueError, "You have to specify either decoder_input_ids"),
    ]
    for overrides, error, message in cases:
        with pytest.raises(error, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
            model(**{**inputs, **overrides})


def test_interpolate_pos_encoding_takes_other_sizes():
    model = tiny(cls=IdeficsModel)
    out = model(**{**prompt(), "pixel_values": torch.rand(2, 2, 3, 15, 20)}, interpolate_pos_encoding=True)
    assert out.image_hidden_states.shape == (2, 2, 1 + 3 * 4, 16)


def test_config_defaults_nesting_and_auto(tmp_path):
    config = IdeficsConfig()
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers, config.cross_layer_interval) == (
        32000, 4096, 32, 1)
    assert (config.alpha_initializer, config.alpha_type, config.freeze_text_layers, config.use_resampler) == (
        "zeros", "float", True, False)
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id, config.tie_word_embeddings) == (0, 1, 2, False)
    assert config.vision_config.hidden_size == config.vision_config.embed_dim == 768
    assert config.perceiver_config.resampler_n_latents == 64 and config.perceiver_config.resampler_depth == 6
    IdeficsConfig(**TINY).save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, IdeficsConfig) and loaded.vision_config.image_size == 10
    assert loaded.perceiver_config.resampler_n_latents == 2
    tiny(cls=IdeficsModel).save_pretrained(tmp_path)
    assert type(AutoModel.from_pretrained(tmp_path)) is IdeficsModel
    with pytest.raises(TypeError, match="vision_config"):
        IdeficsConfig(vision_config=3)


def test_gates_and_layer_layout():
    model = tiny(cls=IdeficsModel, alpha_initializer="normal", alphas_initializer_range=0.5)  # 4.37 fails here
    assert model.gated_cross_attn_layers[0].alpha_dense.shape == (1,)
    vector = IdeficsModel(IdeficsConfig(**TINY, alpha_type="vector", alpha_initializer="ones"))
    assert torch.equal(vector.gated_cross_attn_layers[0].alpha_cross_attn, torch.ones(1, 1, 16))
    with pytest.raises(ValueError, match="alpha_type"):
        IdeficsModel(IdeficsConfig(**TINY, alpha_type="matrix"))
    with pytest.raises(NotImplementedError, match="Alpha initialization"):
        IdeficsModel(IdeficsConfig(**TINY, alpha_initializer="xavier"))
    with pytest.raises(ValueError, match="cross_layer_interval"):
        IdeficsModel(IdeficsConfig(**{**TINY, "num_hidden_layers": 3}, cross_layer_interval=2))
    assert len(IdeficsModel(IdeficsConfig(**{**TINY, "num_hidden_layers": 4}, cross_layer_interval=2))
               .gated_cross_attn_layers) == 2


def test_tied_vocabulary_shares_both_parts():
    model = tiny(tie_word_embeddings=True)
    assert model.lm_head.weight is model.model.embed_tokens.weight
    assert model.lm_head.additional_fc.weight is model.model.embed_tokens.additional_embedding.weight
    logits = model(**prompt()).logits
    assert logits.shape[-1] == 52


def test_decode_step_without_position_ids_counts_them_from_the_mask():
    """4.37 fails on a past plus an attention mask without position_ids; polyformer counts the positions
    from the mask, as generate() does, giving the reference's decode step."""
    case = next(c for c in load_cases("idefics") if c.dir.name == "causal_lm" and c.call == "decode_step")
    inputs = case.inputs()
    del inputs["position_ids"]
    with torch.no_grad():
        out = load_model(IdeficsForVisionText2Text, case)(**inputs, use_cache=True)
    assert_close(out.logits, case.expected()["logits"])


def test_gradient_checkpointing_keeps_the_gradients():
    inputs = prompt()
    grads = []
    for checkpointing in (False, True):
        model = tiny(freeze_text_layers=False).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        model(**inputs, labels=inputs["input_ids"]).loss.backward()
        grads.append([p.grad for p in model.parameters() if p.requires_grad])
    for a, b in zip(*grads):
        assert_close(a, b)


def test_output_attentions_are_none_per_layer_as_in_the_reference():
    case = next(c for c in load_cases("idefics") if c.call == "padded")
    out = run(load_model(IdeficsModel, case), case)
    assert out.attentions == (None, None)
