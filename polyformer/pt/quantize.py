"""Quantized linear layers (int8 and int4 weights), and `quantize_`, which swaps them into a model.

The matrix products are torch's own kernels:
- int8 weights (one scale per output channel, symmetric) go through FBGEMM's integer kernel, which reads
  them in its packed layout with VNNI (AVX-512) or AVX2:
  - weight-only, `TorchAoConfig("int8_weight_only")` (`Int8WeightOnlyLinear`): the input keeps 14 bits
    per row, two exact 7-bit halves multiplied in one call (the note above `ACTIVATION_STEPS`);
  - `"int8_dynamic_activation_int8_weight"` (CTranslate2's `int8_float32`): the input rounded to 7 bits
    per row, `quantized.linear_dynamic`; the fastest and least exact.
  FBGEMM's packed weight is opaque to torch.compile: in a compiled step only the integer product is a call
  out of the graph (pt/packing.py's `PackedLayer`); rounding and rescaling compile with the rest.
- int4 weight-only (what gpt-fast uses on CPU): `aten._weight_int4pack_mm_for_cpu`, 4-bit weights packed
  for the CPU kernel, a scale and a zero per group of input channels, computed in bfloat16, read directly
  in eager mode and in a compiled step.

Why not torch's `_weight_int8pack_mm` for weight-only int8: it converts every weight to floating point for
each block of rows. On the AVX-512 machine of benchmarks/README.md, FBGEMM's call on the two halves reads
the weights 1.5-2x faster at one row and 2.4x at eight (benchmarks/int8_kernels.py).

Notation: N output features, K input features, G group size, M rows.
"""

from __future__ import annotations

import logging
import warnings
from typing import Optional

import torch
import torch.nn as nn

from ..quantization_config import TorchAoConfig
from .packing import PackedLayer

logger = logging.getLogger(__name__)

INT4_INNER_K_TILES = 2  # the CPU kernel's packing of K (torch's _convert_weight_to_int4pack_for_cpu)
INT4_N_MULTIPLE = 16  # the CPU kernel packs output features in tiles of 16


def fits(linear: nn.Linear, config: TorchAoConfig) -> bool:
    """Whether the CPU kernel of `config`'s quantization takes this layer's shape."""
    if config.quant_type != "int4_weight_only":  # FBGEMM's int8 kernel takes every shape
        return True
    return linear.in_features % config.group_size == 0 and linear.out_features % INT4_N_MULTIPLE == 0


class Int8Linear(PackedLayer):
    """The int8 weight both int8 layers multiply by: W int8 (N, K), W = round(W_float / scale) with
    scale = max|row| / 127 per output channel (symmetric), held in FBGEMM's packed layout (the float weight
    is gone, and nothing can save the layer); bias kept as it was."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().float()
        scale = (weight.abs().amax(dim=1).clamp(min=1e-12) / 127).double()  # (N,)
        with warnings.catch_warnings():  # torch deprecates quantized tensors; FBGEMM's packing still takes them
            warnings.simplefilter("ignore", UserWarning)
            quantized = torch.quantize_per_channel(weight, scale, torch.zeros_like(scale, dtype=torch.long), 0,
                                                   torch.qint8)
        self.packed_weight = torch.ops.quantized.linear_prepack(quantized, None)
        self.weight_scale = scale.float()
        self.bias = linear.bias

    def check_input(self, x: torch.Tensor) -> None:
        """x (..., in_features) on the CPU, without gradient: FBGEMM's packed weight takes no other."""
        if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[-1] != self.in_features:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"x must be a tensor (..., {self.in_features}) (in_features={self.in_features}), got {got}")
        if x.device.type != "cpu":
            raise ValueError(f"x is on {x.device}: {type(self).__name__}'s int8 weight is packed for the CPU "
                             "(FBGEMM); keep a quantized model and its inputs on the CPU")
        if torch.is_grad_enabled() and x.requires_grad:
            raise RuntimeError(f"{type(self).__name__} is for inference only: its int8 weight takes no gradient")

    def finish(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The float32 product (M, N) plus the bias, shaped and typed as x's output."""
        if self.bias is not None:
            out = out + self.bias.float()
        return out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)

    def dequantized(self) -> torch.Tensor:
        """The float weight (N, K) the layer multiplies by."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return torch.ops.quantized.linear_unpack(self.packed_weight)[0].dequantize()

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


# Weight-only int8 through the integer kernel: each row of x is rounded to q = round(x * STEPS / max|row|),
# |q| <= STEPS, and split exactly into q = 128 h + l with h and l in [-64, 63] (7 bits each, FBGEMM's
# `reduce_range` width, so the AVX2 kernel's 16-bit pair sums cannot saturate). One integer product of the
# stacked rows [h; l] by W gives both halves; 128 (h W^T) + l W^T = q W^T exactly.
ACTIVATION_STEPS = 128 * 63 + 63  # 8127: the largest |q| whose halves stay in [-64, 63]
HALF_OFFSET = 64  # the kernel's zero point: h + 64 and l + 64 are its unsigned 7-bit inputs


class Int8WeightOnlyLinear(Int8Linear):
    """y = x W^T + b with W int8 (Int8Linear): weight-only int8, computed by FBGEMM's int8 kernel.

    The activations are not rounded to 8 bits: each row is carried at 14 bits over its own range (two 7-bit
    halves, the note above `ACTIVATION_STEPS`), an error of at most max|row| / 16254 per value, below
    bfloat16's rounding of the row's largest values and far below the int8 weight's own error. Both halves
    go through one call, so the weights are read once (faster than torch's `_weight_int8pack_mm`: the module
    docstring). Computed in float32; the output has x's dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        rows = x.reshape(-1, self.in_features).float()  # (M, K)
        steps_per_unit = ACTIVATION_STEPS / rows.abs().amax(dim=1, keepdim=True).clamp(min=1e-30)  # (M, 1)
        q = torch.round(rows * steps_per_unit)
        high = torch.floor((q + HALF_OFFSET) / 128)
        low = q - 128 * high
        halves = self.product(torch.cat([high, low]))  # (2M, N)
        out = (halves[: rows.shape[0]] * 128 + halves[rows.shape[0]:]) / steps_per_unit
        return self.finish(out, x)

    def run(self, halves: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(halves, 1.0, HALF_OFFSET,
                                                                                 self.packed_weight)


class Int8DynamicActivationLinear(Int8Linear):
    """y = dequantize(quantize(x) W^T) + b: W int8 (Int8Linear), each row of x quantized at the call to
    7-bit unsigned integers over its own range (FBGEMM's `reduce_range`, which keeps the AVX2 kernel's
    16-bit sums from saturating, so every x86-64 CPU gives the same integers). Computed in float32; the
    output has x's dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        rows = x.reshape(-1, self.in_features).float()  # (M, K)
        if rows.shape[0] > 1:  # the kernel takes one range for all rows: give every row the same one
            row_scale = rows.abs().amax(dim=1, keepdim=True).clamp(min=1e-30)  # (M, 1)
            out = self.product(rows / row_scale) * row_scale
        else:
            out = self.product(rows)
        return self.finish(out, x)

    def run(self, rows: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(rows, self.packed_weight, True)


class Int4WeightOnlyLinear(nn.Module):
    """y = x W^T + b with W in 4 bits, per group of G input channels: W = (q - 8) * scale + zero,
    q in [0, 15] from the group's min and max (asymmetric), packed for the CPU kernel; computed in bfloat16."""

    def __init__(self, linear: nn.Linear, group_size: int):
        super().__init__()
        self.in_features, self.out_features, self.group_size = linear.in_features, linear.out_features, group_size
        weight = linear.weight.detach().float().reshape(self.out_features, -1, group_size)  # (N, K/G, G)
        low, high = weight.amin(-1, keepdim=True), weight.amax(-1, keepdim=True)
        scale = ((high - low) / 15).clamp(min=1e-6)
        quantized = torch.round((weight - low) / scale).clamp(0, 15).to(torch.int32).reshape(self.out_features, -1)
        zero = low + 8 * scale
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(quantized, INT4_INNER_K_TILES)
        self.register_buffer("weight", packed)  # (N, K/2) uint8
        self.register_buffer("scales_and_zeros",
                             torch.cat([scale, zero], dim=-1).transpose(0, 1).contiguous().to(torch.bfloat16))  # (K/G, N, 2)
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features).to(torch.bfloat16)  # (M, K)
        out = torch.ops.aten._weight_int4pack_mm_for_cpu(rows, self.weight, self.group_size, self.scales_and_zeros)
        out = out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, group_size={self.group_size}, "
                f"bias={self.bias is not None}")


QUANTIZED_LAYERS = {"int8_weight_only": Int8WeightOnlyLinear, "int4_weight_only": Int4WeightOnlyLinear,
                    "int8_dynamic_activation_int8_weight": Int8DynamicActivationLinear}


def quantize_(model: nn.Module, config: TorchAoConfig) -> nn.Module:
    """Replace, in place, every nn.Linear of `model` (but the output embeddings and the modules named in
    `config.modules_to_not_convert`) by its quantized layer (`QUANTIZED_LAYERS[config.quant_type]`); returns
    the model.

    The weight-only kernels take some shapes only: int8 needs in_features divisible by 16, int4 in_features
    divisible by the group size and out_features by 16; other layers stay in floating point (logged). The
    model then serves inference only (the quantized weights take no gradient), and `save_pretrained`
    refuses it: save the floating-point model and quantize when loading."""
    if not isinstance(config, TorchAoConfig):
        raise TypeError(f"config must be a TorchAoConfig, got {type(config).__name__}")
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise NotImplementedError("weight-only quantization runs on CPU here; move the model to CPU first")
    skip = _not_converted(model, config)
    kept = []
    for name, module in list(model.named_modules()):
        if type(module) is not nn.Linear or any(name == s or name.startswith(s + ".") for s in skip):
            continue
        if not fits(module, config):
            kept.append(name)
            continue
        layer = (Int4WeightOnlyLinear(module, config.group_size) if config.quant_type == "int4_weight_only"
                 else QUANTIZED_LAYERS[config.quant_type](module))
        parent, _, attribute = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attribute, layer)
    if kept:
        logger.info("left in floating point (shapes the %s kernel does not take): %s", config.quant_type, kept)
    return model


def _not_converted(model: nn.Module, config: TorchAoConfig) -> list:
    if config.modules_to_not_convert is not None:
        return list(config.modules_to_not_convert)
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return [name for name, module in model.named_modules() if output is not None and module is output]


def is_quantized(model: nn.Module) -> bool:
    return any(isinstance(m, tuple(QUANTIZED_LAYERS.values())) for m in model.modules())



def check_can_save(model: nn.Module) -> Optional[str]:
    """Why `model` cannot be saved (a quantized model), or None."""
    if is_quantized(model):
        return ("this model's linear layers are quantized (int8 / int4, packed for this CPU's kernels), which no "
                "checkpoint format polyformer writes can hold; save the floating-point model and pass "
                "quantization_config=TorchAoConfig(...) to from_pretrained")
    return None
