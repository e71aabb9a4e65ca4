"""Quantized linear layers (int8 and int4 weights), and `quantize_`, which swaps them into a model.

The matrix products are torch's own kernels:
- weight-only (what gpt-fast uses on CPU): `aten._weight_int8pack_mm` (int8 weights, one float scale per
  output channel) and `aten._weight_int4pack_mm_for_cpu` (4-bit weights packed for the CPU kernel, a scale
  and a zero per group of input channels). Both read the packed weights directly, with no float copy of
  them, in eager mode and in a compiled decoding step (generate(compile=True)). Activations stay in the
  model's dtype (int4 computes in bfloat16).
- int8 weights *and* int8 activations (CTranslate2's `int8_float32`): FBGEMM's
  `quantized.linear_dynamic`, integer products of the int8 weight (per output channel, symmetric) and the
  input quantized at each call, one scale per row; float32 out. Fastest on CPU (it reads the weights at
  about twice the weight-only kernels' speed on the AVX-512 machine of benchmarks/README.md), less exact
  (the input is rounded too). Its packed weight is opaque to torch.compile: in a compiled step the layer
  is one call out of the graph (pt/packing.py's `PackedLayer`).

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
# torch 2.13's bfloat16 int8 kernel reads input features in blocks of 16: other widths crash it (33-37) or
# give garbage (40), where float32 is right; such layers stay in floating point.
INT8_K_MULTIPLE = 16


def fits(linear: nn.Linear, config: TorchAoConfig) -> bool:
    """Whether the CPU kernel of `config`'s quantization takes this layer's shape."""
    if config.quant_type == "int8_dynamic_activation_int8_weight":
        return True
    if config.quant_type == "int8_weight_only":
        return linear.in_features % INT8_K_MULTIPLE == 0
    return linear.in_features % config.group_size == 0 and linear.out_features % INT4_N_MULTIPLE == 0


class Int8WeightOnlyLinear(nn.Module):
    """y = x W^T * scale + b with W int8 (N, K): W = round(W_float / scale), scale = max|row| / 127."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach()
        scale = weight.float().abs().amax(dim=1).clamp(min=1e-12) / 127  # (N,)
        quantized = torch.round(weight.float() / scale[:, None]).clamp(-128, 127).to(torch.int8)
        self.register_buffer("weight", quantized)
        self.register_buffer("weight_scale", scale.to(weight.dtype))
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)  # (M, K)
        out = torch.ops.aten._weight_int8pack_mm(rows, self.weight, self.weight_scale.to(x.dtype))
        out = out.reshape(*x.shape[:-1], self.out_features)
        return out if self.bias is None else out + self.bias

    def dequantized(self) -> torch.Tensor:
        """The float weight (N, K) the layer multiplies by."""
        return self.weight.float() * self.weight_scale.float()[:, None]

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Int8DynamicActivationLinear(PackedLayer):
    """y = dequantize(quantize(x) W^T) + b: W int8 (N, K) per output channel as in Int8WeightOnlyLinear,
    each row of x quantized at the call to 7-bit unsigned integers over its own range (FBGEMM's
    `reduce_range`, which keeps the AVX2 kernel's 16-bit sums from saturating, so every x86-64 CPU gives the
    same integers). Computed in float32; the output has x's dtype."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        weight = linear.weight.detach().float()
        scale = (weight.abs().amax(dim=1).clamp(min=1e-12) / 127).double()  # (N,)
        with warnings.catch_warnings():  # torch deprecates quantized tensors; FBGEMM's packing still takes them
            warnings.simplefilter("ignore", UserWarning)
            quantized = torch.quantize_per_channel(weight, scale, torch.zeros_like(scale, dtype=torch.long), 0,
                                                   torch.qint8)
        # FBGEMM's layout, not a buffer: the float weight is gone, and nothing can save this layer
        self.packed_weight = torch.ops.quantized.linear_prepack(quantized, None)
        self.bias = linear.bias

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            raise RuntimeError("int8 dynamic-activation layers are for inference only: they take no gradient")
        rows = x.reshape(-1, self.in_features).float()  # (M, K)
        if rows.shape[0] > 1:  # the kernel takes one range for all rows: give every row the same one
            row_scale = rows.abs().amax(dim=1, keepdim=True).clamp(min=1e-30)  # (M, 1)
            out = torch.ops.quantized.linear_dynamic(rows / row_scale, self.packed_weight, True) * row_scale
        else:
            out = torch.ops.quantized.linear_dynamic(rows, self.packed_weight, True)
        out = out.reshape(*x.shape[:-1], self.out_features).to(x.dtype)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


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
