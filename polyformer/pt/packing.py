"""`pack_linears_`: the linear layers' weights stored in oneDNN's blocked layout, for faster CPU inference.

Decoding one token multiplies one row by every weight, so a step costs the time to read the weights. On
the AMD EPYC of benchmarks/README.md torch's float32 `F.linear` on one row runs MKL's single-threaded path
(14-16 GB/s with 1 or 2 threads) and bfloat16 `F.linear` reorders the weight at every call (17 GB/s); the
same weights prepacked once for oneDNN (`torch.ops.mkldnn._reorder_linear_weight`) and multiplied by
`torch.ops.mkldnn._linear_pointwise` read at 28.6 GB/s (float32) and 22.9 GB/s (bfloat16) with 2 threads.
CodeGen-350M's shape decodes at 17.1 tokens/s in float32 (10.0 plain) and 29.2 in bfloat16 (14.9 plain).

The packed weight *replaces* the plain one (no second copy; a weight memory-mapped from a safetensors file
becomes an anonymous copy in the packed layout). The model is then for inference on this CPU: no
gradients, no `save_pretrained` (save before packing), no dtype change (pack after `to(dtype)`). Results
equal the plain layers' within float rounding (another kernel, another summation order), not bit for bit.

torch.compile cannot take a packed weight (oneDNN's, or FBGEMM's in pt/quantize.py) as a graph input. Such
a layer is a `PackedLayer`: inside a compiled graph its kernel's product is one call of the
`polyformer::packed_linear` op, which looks the layer up by its handle and runs the product eagerly, so
the rest of the graph (the layer's own rounding or rescaling, norms, attention, activations) still compiles
around it (generate(compile=True) on a packed or int8 model).
"""

from __future__ import annotations

import itertools
import weakref

import torch
import torch.nn as nn

_LAYERS: "weakref.WeakValueDictionary[int, PackedLayer]" = weakref.WeakValueDictionary()
_HANDLES = itertools.count()


@torch.library.custom_op("polyformer::packed_linear", mutates_args=())
def packed_linear(x: torch.Tensor, handle: int) -> torch.Tensor:
    """The packed layer registered under `handle` applied to x: how a compiled graph calls it."""
    return _LAYERS[handle].run(x)


@packed_linear.register_fake
def _packed_linear_shape(x: torch.Tensor, handle: int) -> torch.Tensor:
    return x.new_empty((*x.shape[:-1], _LAYERS[handle].out_features))


class PackedLayer(nn.Module):
    """A linear layer whose weight is held in a kernel's own layout: `run(x)` is the kernel's product; in a
    compiled graph it is a `polyformer::packed_linear` call (the module docstring)."""

    out_features: int

    def __init__(self):
        super().__init__()
        self._register()

    def _register(self) -> None:
        self.handle = next(_HANDLES)
        _LAYERS[self.handle] = self

    def __setstate__(self, state) -> None:  # a copy (copy.deepcopy, pickle) is a layer of its own
        super().__setstate__(state)
        self._register()

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """The kernel's product of x (..., in) by the packed weight: (..., out_features), x's dtype."""
        raise NotImplementedError

    def product(self, x: torch.Tensor) -> torch.Tensor:
        """`run(x)`, as one opaque op call inside a compiled graph. A subclass whose forward does more than
        the product (rounding the input, rescaling the output) calls this, so inductor compiles the rest."""
        if torch.compiler.is_compiling():
            return packed_linear(x, self.handle)
        return self.run(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.product(x)


class PackedLinear(PackedLayer):
    """An nn.Linear whose weight (N, K) is held in oneDNN's layout for this CPU; bias kept as it was."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.dtype = linear.weight.dtype
        self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), 1)  # not a buffer:
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != self.dtype:
            raise TypeError(f"this layer was packed for {self.dtype} inputs, got {x.dtype}; call pack_linears_ after "
                            "choosing the model's dtype")
        if torch.is_grad_enabled() and x.requires_grad:
            raise RuntimeError("packed linear layers (pack_linears_) are for inference only: they take no gradient")
        return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.bias, "none", [], "")

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, dtype={self.dtype}, " \
               f"bias={self.bias is not None}"


def pack_linears_(model: nn.Module) -> nn.Module:
    """Replace, in place, every nn.Linear of `model` (float32 or bfloat16, on CPU) by a `PackedLinear`;
    returns the model. Layers already quantized (quantize_) stay as they are. Raises where oneDNN cannot
    run the model's dtype on this CPU."""
    linears = [(name, m) for name, m in model.named_modules() if type(m) is nn.Linear]
    if not torch.backends.mkldnn.is_available():
        raise RuntimeError("pack_linears_ needs torch built with oneDNN (mkldnn), which this build lacks")
    for name, linear in linears:
        weight = linear.weight
        if weight.device.type != "cpu" or weight.dtype not in (torch.float32, torch.bfloat16):
            raise ValueError(f"pack_linears_ packs float32 or bfloat16 weights on CPU; {name} has "
                             f"{weight.dtype} on {weight.device}")
        if weight.dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            raise RuntimeError("oneDNN has no bfloat16 kernels on this CPU (it needs AVX-512 BF16 or AMX): "
                               "keep the plain layers, or pack a float32 model")
    for name, linear in linears:
        parent, _, attribute = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attribute, PackedLinear(linear))
    return model


def is_packed(model: nn.Module) -> bool:
    """Whether pack_linears_ packed some of `model`'s layers."""
    return any(isinstance(m, PackedLinear) for m in model.modules())
