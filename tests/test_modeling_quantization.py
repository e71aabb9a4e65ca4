"""Weight-only int8 / int4 quantization (`TorchAoConfig`, `quantize_`, pt/quantize.py) on the decoder
fixtures: which layers are swapped, logits and greedy tokens near the float32 model's, greedy decoding eager
and compiled, and the clear errors (saving, reading a quantized checkpoint, bad configs).

Quantization is judged against float32 truth, not the reference's bits. The bounds below are measured on
the tiny random fixture models (their weights are uniform noise, the worst case for a few bits): largest
logit error over the largest logit, int8 weight-only 0.95-3.2% (measured 2026-12-07: float32 1.10 / 0.95 /
2.26% for CodeGen / GPT-J / Llama, bfloat16 1.83 / 1.38 / 3.21%), int4 (groups of 32) ~19%; real weights do better
(tests/test_parity_minilm.py: int8 sentence embeddings at cosine >= 0.99).
"""

import json
from pathlib import Path

import pytest
import torch

import polyformer
from polyformer import TorchAoConfig, quantize_
from polyformer.pt.quantize import Int4WeightOnlyLinear, Int8DynamicActivationLinear, Int8WeightOnlyLinear

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FAMILIES = ("codegen", "gptj", "llama")
# (quant_type, config kwargs, model dtype, largest |logit error| / largest |logit| allowed)
# int8 activations too: measured 2.0-6.0% (float32), 2.5-12.3% (bfloat16, llama) on 2026-12-07
DYNAMIC = "int8_dynamic_activation_int8_weight"
SETTINGS = [("int8_weight_only", {}, torch.float32, 0.05), ("int8_weight_only", {}, torch.bfloat16, 0.05),
            ("int4_weight_only", {"group_size": 32}, torch.bfloat16, 0.3),
            (DYNAMIC, {}, torch.float32, 0.1), (DYNAMIC, {}, torch.bfloat16, 0.2)]
LAYERS = {"int8_weight_only": Int8WeightOnlyLinear, "int4_weight_only": Int4WeightOnlyLinear,
          DYNAMIC: Int8DynamicActivationLinear}


def fixture(family):
    meta = json.loads((FIXTURES / family / "generate" / "generate.json").read_text())
    path = (FIXTURES / family / "generate" / meta["checkpoint"]).resolve()
    inputs = {k: torch.tensor(v) for k, v in meta["inputs"].items()}
    return getattr(polyformer, meta["model_class"]), path, inputs


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("quant_type,kwargs,dtype,bound", SETTINGS, ids=["int8-float32", "int8-bfloat16", "int4", "int8-dynamic-float32",
                                                                   "int8-dynamic-bfloat16"])
def test_logits_near_float32(family, quant_type, kwargs, dtype, bound):
    cls, path, inputs = fixture(family)
    with torch.no_grad():
        truth = cls.from_pretrained(path)(**inputs).logits
        model = cls.from_pretrained(path, torch_dtype=dtype, quantization_config=TorchAoConfig(quant_type, **kwargs))
        logits = model(**inputs).logits
    real = inputs["attention_mask"].bool()
    assert logits.dtype == torch.float32
    error = (logits - truth)[real].abs().max() / truth[real].abs().max()
    assert 0 < error < bound, f"{family} {quant_type} {dtype}: relative error {error:.4f}"
    assert any(isinstance(m, LAYERS[quant_type]) for m in model.modules())
    assert type(model.get_output_embeddings()) is torch.nn.Linear  # the output embeddings stay in float


# teacher-forced agreement with float32's greedy tokens: (least share of steps whose top-1 is float32's token,
# largest rank of float32's token among the quantized logits); measured 2026-12-07 (codegen / gptj / llama):
# int8-float32 1.00 / 0.97 / 0.95, rank <= 1; int8-bfloat16 1.00 / 0.97 / 1.00, rank <= 1; int4 0.77 / 1.00 /
# 0.80, rank <= 5; int8-dynamic 0.93 / 0.97 / 0.95 (float32) and 0.95 / 0.93 / 0.95 (bfloat16), rank <= 1
AGREEMENT = {"int8_weight_only": (0.85, 3), "int4_weight_only": (0.6, 10), DYNAMIC: (0.85, 3)}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("quant_type,kwargs,dtype,bound", SETTINGS, ids=["int8-float32", "int8-bfloat16", "int4", "int8-dynamic-float32",
                                                                   "int8-dynamic-bfloat16"])
def test_greedy_tokens_agree_with_float32(family, quant_type, kwargs, dtype, bound):
    """float32 generates 20 greedy tokens per row (up to its EOS); the quantized model, fed the same
    sequence, is scored at each of those steps: whether its top token is float32's, and float32's token's
    rank among its logits. Teacher forcing keeps one early near-tie from deciding every later step (on
    these uniform-noise weights a free run parts from float32 after 0-20 tokens)."""
    cls, path, inputs = fixture(family)
    truth_model = cls.from_pretrained(path)
    model = cls.from_pretrained(path, torch_dtype=dtype, quantization_config=TorchAoConfig(quant_type, **kwargs))
    prompt = inputs["input_ids"].shape[1]
    with torch.no_grad():
        sequence = truth_model.generate(**inputs, max_new_tokens=20, pad_token_id=0)
        mask = torch.cat([inputs["attention_mask"], torch.ones_like(sequence[:, prompt:])], dim=1)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)  # as generate() numbers a left-padded row
        logits = model(input_ids=sequence, attention_mask=mask, position_ids=positions).logits[:, prompt - 1:-1]
    chosen = sequence[:, prompt:]
    eos_before = torch.cat([torch.zeros_like(chosen[:, :1]), (chosen == truth_model.config.eos_token_id).long()[:, :-1]], 1)
    scored = eos_before.cumsum(-1) == 0  # steps up to and with float32's EOS (pad tokens follow it)
    agreement = (logits.argmax(-1) == chosen)[scored].float().mean()
    rank = (logits > logits.gather(-1, chosen[..., None])).sum(-1)[scored].max()
    least_agreement, largest_rank = AGREEMENT[quant_type]
    assert agreement >= least_agreement and rank <= largest_rank, f"{family}: agreement {agreement:.2f}, rank {rank}"


@pytest.mark.parametrize("quant_type,kwargs,dtype", [("int8_weight_only", {}, torch.bfloat16),
                                                     ("int4_weight_only", {"group_size": 32}, torch.bfloat16),
                                                     (DYNAMIC, {}, torch.float32)])
def test_compiled_step_decodes_as_the_eager_one(quant_type, kwargs, dtype):
    """(int8 dynamic activation: each FBGEMM product is one call out of the compiled graph. It runs in
    float32: in bfloat16 the compiled graph's other rounding of the norms moves an input across a 7-bit
    step now and then, and on these uniform-noise weights a near-tie flips a token.)"""
    cls, path, inputs = fixture("llama")
    model = cls.from_pretrained(path, torch_dtype=dtype, quantization_config=TorchAoConfig(quant_type, **kwargs))
    eager = model.generate(**inputs, max_new_tokens=6, pad_token_id=0)
    assert torch.equal(model.generate(**inputs, max_new_tokens=6, pad_token_id=0, compile=True), eager)


def test_int8_layer_is_its_dequantized_weight():
    """Weight-only int8: the product of the dequantized weight by x, with x carried at 14 bits per row (two
    7-bit halves): each value off by at most max|row| / 16254, so each output by at most that times the
    absolute sum of the weight's row (float64 truth; 1e-5 for float32's own rounding)."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(100, 48)  # 100: FBGEMM takes every width
    layer = Int8WeightOnlyLinear(linear)
    weight = layer.dequantized()
    assert weight.shape == (48, 100) and layer.weight_scale.shape == (48,)
    assert (weight - linear.weight).abs().max() <= layer.weight_scale.max() / 2 + 1e-7  # half a step
    steps = weight / layer.weight_scale[:, None]
    assert (steps - steps.round()).abs().max() < 1e-4 and steps.abs().max() < 127.001  # int8 times a scale per row
    x = torch.randn(3, 5, 100) * torch.tensor([0.01, 1.0, 100.0])[:, None, None]
    x[1, 2] = 0  # an all-zero row
    x[2, 0, 7] = 4000  # an outlier: its row's other values get coarser steps
    for dtype in (torch.float32, torch.bfloat16):
        inputs = x.to(dtype)
        truth = torch.nn.functional.linear(inputs.double(), weight.double(), linear.bias.double())
        bound = inputs.abs().amax(-1, keepdim=True).double() / 16254 * weight.abs().sum(1).double()
        with torch.no_grad():
            got = layer(inputs)
        assert got.dtype == dtype and got.shape == (3, 5, 48)
        rounding = 1e-5 * (1 + truth.abs()) if dtype == torch.float32 else 2 ** -8 * truth.abs()  # the output's dtype
        assert ((got.double() - truth).abs() <= bound + rounding).all(), dtype
        if dtype == torch.float32:
            assert ((got.double() - truth).abs() > 1e-4 * truth.abs()).any()  # x is rounded: not float32's product
    with pytest.raises(RuntimeError, match="inference only"):
        layer(torch.randn(2, 100, requires_grad=True))
    with pytest.raises(ValueError, match="x is on meta"):  # any device but the CPU
        layer(torch.empty(2, 100, device="meta"))
    for wrong in (torch.randn(2, 99), torch.tensor(1.0), [1.0] * 100):
        with pytest.raises(ValueError, match=r"x must be a tensor \(\.\.\., 100\) \(in_features=100\)"):
            layer(wrong)


def test_int8_dynamic_layer_quantizes_each_row_over_its_own_range():
    """FBGEMM quantizes its whole input over one range; the layer gives each row its own, so rows of very
    different magnitude in one batch are each near their float32 product (7-bit inputs, int8 weights)."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    layer = Int8DynamicActivationLinear(linear)
    x = torch.randn(3, 5, 64) * torch.tensor([0.01, 1.0, 100.0])[:, None, None]
    got, truth = layer(x), linear(x).detach()
    assert got.shape == truth.shape and got.dtype == torch.float32
    relative = ((got - truth).abs().amax(-1) / truth.abs().amax(-1)).max()
    assert relative < 0.05, relative  # measured 1.6%
    with pytest.raises(RuntimeError, match="inference only"):
        layer(torch.randn(2, 64, requires_grad=True))


def test_which_layers_are_converted():
    cls, path, _ = fixture("llama")
    model = cls.from_pretrained(path)
    linears = {name for name, m in model.named_modules() if type(m) is torch.nn.Linear}
    quantize_(model, TorchAoConfig("int8_weight_only", modules_to_not_convert=["model.layers.0"]))
    for name, module in model.named_modules():
        if name in linears:  # int8 takes every width; lm_head too (not listed)
            stays = name.startswith("model.layers.0.")
            assert isinstance(module, torch.nn.Linear if stays else Int8WeightOnlyLinear), name


def test_config_round_trip_and_errors():
    config = TorchAoConfig("int4_weight_only", group_size=64)
    assert config.to_dict() == {"quant_method": "torchao", "quant_type": "int4_weight_only",
                                "quant_type_kwargs": {"group_size": 64}, "modules_to_not_convert": None}
    assert TorchAoConfig.from_dict(config.to_dict()) == config
    assert TorchAoConfig("int4_weight_only").group_size == 128
    with pytest.raises(ValueError, match="quant_type"):
        TorchAoConfig("int3_weight_only")
    with pytest.raises(ValueError, match="group_size"):
        TorchAoConfig("int4_weight_only", group_size=100)
    with pytest.raises(TypeError, match="group_size"):
        TorchAoConfig("int8_weight_only", group_size=64)
    with pytest.raises(ValueError, match="quant_method"):
        TorchAoConfig.from_dict({"quant_method": "gptq", "quant_type": "int8_weight_only"})


def test_saving_and_reading_quantized_checkpoints_raise(tmp_path):
    cls, path, _ = fixture("codegen")
    model = cls.from_pretrained(path, quantization_config={"quant_type": "int8_weight_only"})
    with pytest.raises(NotImplementedError, match="save the floating-point model"):
        model.save_pretrained(tmp_path / "out")
    assert not (tmp_path / "out").exists()
    folder = tmp_path / "quantized"
    cls.from_pretrained(path).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = TorchAoConfig("int8_weight_only").to_dict()  # as transformers saves one
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(NotImplementedError, match="quantized weights"):
        cls.from_pretrained(folder)
    with pytest.raises(TypeError, match="TorchAoConfig"):
        cls.from_pretrained(path, quantization_config="int8")
