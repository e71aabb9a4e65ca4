"""Faster bfloat16 linear layers on CPU while `generate()` decodes.

A decoding step multiplies a few rows (batch x beams, one token each) by every weight of the model, so
its time is the time to read the weights from memory. On CPU, `F.linear` in bfloat16 reads a weight at
~15 GB/s on 2 cores (oneDNN reorders the weight on every call), so half the bytes of float32 (which
streams at ~27 GB/s) save little time. Two other kernels read it at 20-22 GB/s (CodeGen-350M's shapes:
benchmarks/linear_bandwidth.py, benchmarks/README.md):

- one row (a single prompt, greedy or sampling): `torch.addmv` / `torch.mv` on the weight as it is, no
  extra memory;
- several rows (batched prompts, beams): a copy of the weight prepacked for oneDNN
  (`torch.ops.mkldnn._reorder_linear_weight`), multiplied by `torch.ops.mkldnn._linear_pointwise`.

Their results equal `F.linear`'s within bfloat16 rounding, not bit for bit: each kernel sums the products
in its own order, which depends on the CPU (AVX-512, AMX) and the shapes, so scores may differ in the last
bfloat16 place and a near-tie between two tokens may break the other way.

Memory and time trade-off of the packed copies: they hold as many bytes as the weights of the linear
layers (CodeGen-350M in bfloat16: 0.6 GB more; a 6B-parameter model: 12 GB more) for as long as the
generate() call lasts, and making them reads and writes every weight once per call (~0.2 s for
CodeGen-350M on 2 cores, repaid after ~20 decoding steps). They are only made when a call decodes
more than one row; set `PACK_WEIGHTS = False` (or the environment variable
`POLYFORMER_PACK_WEIGHTS=0`) to never make them: one-row decoding keeps its copy-free kernel.
`ENABLED = False` (or `POLYFORMER_FAST_LINEAR=0`) turns the whole thing off: every layer runs `F.linear`.

What is left alone: float32 (its `F.linear` already streams at the memory's speed) and float16 (no
faster kernel here, and oneDNN's float16 results differ from `F.linear`'s); weights not on CPU; the
prompt's forward (many rows: `F.linear`); subclasses of nn.Linear that override `forward`; layers
whose `forward` was already replaced on the instance. Where oneDNN or its bfloat16 support is missing,
or a kernel fails its first check, every layer silently keeps `F.linear` (a debug line is logged).
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Callable, Iterator, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

logger = logging.getLogger(__name__)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "1").strip().lower() not in ("0", "false", "no", "off")


ENABLED: bool = _env_flag("POLYFORMER_FAST_LINEAR")       # any fast kernel at all
PACK_WEIGHTS: bool = _env_flag("POLYFORMER_PACK_WEIGHTS")  # packed copies for several-row decoding

_support: Optional[bool] = None  # whether the kernels work here (checked once, on first use)


def supported() -> bool:
    """Whether this torch build and CPU run the bfloat16 kernels, giving `F.linear`'s numbers on a
    small check (done once; a sanity check that they work, not a promise of equal bits on every shape)."""
    global _support
    if _support is None:
        _support = _check_support()
    return _support


def _check_support() -> bool:
    try:
        if not (torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()):
            logger.debug("fast linear layers off: oneDNN or its bfloat16 support is missing; using F.linear")
            return False
        generator = torch.Generator().manual_seed(0)
        weight = torch.randn(8, 16, generator=generator).to(torch.bfloat16)
        bias = torch.randn(8, generator=generator).to(torch.bfloat16)
        x = torch.randn(2, 1, 16, generator=generator).to(torch.bfloat16)
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, 2)
        ok = (torch.equal(torch.addmv(bias, weight, x[0, 0]), F.linear(x[0, 0], weight, bias))
              and torch.equal(torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], ""),
                              F.linear(x, weight, bias)))
    except (RuntimeError, AttributeError, NotImplementedError) as error:
        logger.debug("fast linear layers off: %s; using F.linear", error)
        return False
    if not ok:
        logger.debug("fast linear layers off: the kernels' results differ from F.linear here; using F.linear")
    return ok


def eligible(module: nn.Module) -> bool:
    """An nn.Linear with nn.Linear's own forward and bfloat16 weight (and bias) on CPU."""
    if not isinstance(module, nn.Linear) or type(module).forward is not nn.Linear.forward:
        return False
    if "forward" in module.__dict__:  # replaced on the instance (by us in an outer call, or by the user)
        return False
    weight, bias = module.weight, module.bias
    return (weight.device.type == "cpu" and weight.dtype == torch.bfloat16 and weight.dim() == 2
            and (bias is None or bias.dtype == weight.dtype))


def fast_forward(module: nn.Linear, packed: Optional[torch.Tensor], rows: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The forward `fast_linears` puts on `module`: addmv for one row, the packed weight for 2..rows
    rows (when given), F.linear otherwise (and whenever gradients are recorded)."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        weight, bias = module.weight, module.bias
        if torch.is_grad_enabled() or x.dtype != weight.dtype or x.dim() == 0:
            return F.linear(x, weight, bias)
        n = x.numel() // max(x.shape[-1], 1)
        if n == 1 and x.shape[-1] == weight.shape[1]:
            flat = x.reshape(-1)
            out = torch.mv(weight, flat) if bias is None else torch.addmv(bias, weight, flat)
            return out.view(x.shape[:-1] + (weight.shape[0],))
        if packed is not None and 1 < n <= rows:
            return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
        return F.linear(x, weight, bias)

    return forward


def pack(weight: torch.Tensor, rows: int) -> torch.Tensor:
    """A oneDNN-prepacked copy of a (out, in) weight for multiplying `rows` rows at a time."""
    return torch.ops.mkldnn._reorder_linear_weight(weight.detach(), rows)


@contextlib.contextmanager
def fast_linears(model: nn.Module, rows: int = 1) -> Iterator[int]:
    """Within the block, every eligible linear layer of `model` runs the fast bfloat16 kernels (see the
    module docstring); `rows`: how many rows each decoding step feeds (batch x beams), which decides
    whether packed copies are made (rows > 1 and `PACK_WEIGHTS`). Yields how many layers were switched.
    On exit every layer gets nn.Linear's forward back and the packed copies are freed."""
    layers: List[nn.Linear] = []
    if ENABLED and isinstance(model, nn.Module):
        layers = [m for m in model.modules() if eligible(m)]
        if layers and not supported():
            layers = []
    packing = rows > 1 and PACK_WEIGHTS
    switched: List[nn.Linear] = []
    try:
        for layer in layers:
            copy = None
            if packing:
                try:
                    copy = pack(layer.weight, rows)
                except RuntimeError as error:  # keep going with the copy-free kernel
                    logger.debug("could not pack the weight of a linear layer (%s); using F.linear for several rows",
                                 error)
                    packing = False
            layer.forward = fast_forward(layer, copy, rows)
            switched.append(layer)
        yield len(switched)
    finally:
        for layer in switched:
            layer.__dict__.pop("forward", None)
