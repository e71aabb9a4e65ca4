"""Attention-head pruning: the rows (or columns) of the projections that belong to the heads kept.

A head h of an attention with H heads of size D owns the slice [h*D, (h+1)*D) of the query, key and value
outputs and of the output projection's input. Pruning keeps the other slices: the projections get fewer
output rows, the output projection fewer input columns (its bias unchanged). Heads are numbered as in the
unpruned layer, so pruning {0} then {1} removes the original heads 0 and 1 (as transformers does).
"""

from __future__ import annotations

from typing import Iterable, Sequence, Set, Tuple

import torch
import torch.nn as nn


def kept_index(heads: Iterable[int], n_heads: int, head_size: int, already_pruned: Set[int]) -> Tuple[Set[int], torch.Tensor]:
    """The heads newly pruned (original numbering) and the indices of the features kept in the current layer.

    `n_heads` is the layer's current number of heads, `already_pruned` the original numbers of those gone.
    """
    heads = set(heads)
    original = n_heads + len(already_pruned)
    bad = sorted(h for h in heads if not isinstance(h, int) or not 0 <= h < original)
    if bad:
        raise ValueError(f"heads to prune must be ints in [0, {original}), got {bad}")
    heads -= already_pruned
    remaining = [h for h in range(original) if h not in already_pruned]  # original numbers, in order
    keep = torch.ones(n_heads, head_size, dtype=torch.bool, device="cpu")  # "cpu": also under a meta default device
    for h in heads:
        keep[remaining.index(h)] = False
    return heads, torch.arange(n_heads * head_size, device="cpu")[keep.view(-1)]


def prune_linear(layer: nn.Linear, index: torch.Tensor, dim: int = 0) -> nn.Linear:
    """A new Linear keeping `index` along `dim` of the weight (0: outputs, bias too; 1: inputs, bias kept)."""
    index = index.to(layer.weight.device)
    weight = layer.weight.detach().index_select(dim, index).clone()
    bias = None
    if layer.bias is not None:
        bias = layer.bias.detach().clone() if dim == 1 else layer.bias.detach()[index].clone()
    out_features, in_features = weight.shape
    new = nn.Linear(in_features, out_features, bias=bias is not None, device=weight.device, dtype=weight.dtype)
    new.weight = nn.Parameter(weight, requires_grad=layer.weight.requires_grad)
    if bias is not None:
        new.bias = nn.Parameter(bias, requires_grad=layer.bias.requires_grad)
    return new


def prune_attention(attention: nn.Module, heads: Iterable[int], projections: Sequence[Tuple[nn.Module, str]],
                    output: Tuple[nn.Module, str], head_size: int) -> None:
    """Prune `heads` of `attention`, a module with `n_heads` (current count) and `pruned_heads` (original numbers
    gone): each (module, attribute) Linear in `projections` loses the heads' output rows, the `output` Linear the
    matching input columns."""
    heads, index = kept_index(heads, attention.n_heads, head_size, attention.pruned_heads)
    if not heads:
        return
    if len(heads) == attention.n_heads:
        raise ValueError(f"cannot prune every head of an attention layer (heads {sorted(heads)} of {attention.n_heads})")
    for module, name in projections:
        setattr(module, name, prune_linear(getattr(module, name), index))
    module, name = output
    setattr(module, name, prune_linear(getattr(module, name), index, dim=1))
    attention.n_heads -= len(heads)
    attention.pruned_heads = attention.pruned_heads | heads
