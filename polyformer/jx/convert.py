"""PyTorch <-> Flax weight names: one generic rule, no per-family table.

A PyTorch key `distilbert.transformer.layer.0.attention.q_lin.weight` is the Flax path
`("distilbert", "transformer", "layer", "0", "attention", "q_lin", "kernel")`: the dots become path
levels (Flax modules name their layers "0", "1", ... as 4.37 does), and the last name follows the layer:

    PyTorch                          Flax
    Linear  weight (out, in)    <->  Dense  kernel (in, out)   (transposed; conv weights (O, I, kh, kw) <-> (kh, kw, I, O))
    LayerNorm weight / gamma    <->  LayerNorm scale
    Embedding weight            <->  Embed embedding
    bias / beta                 <->  bias

Which of scale / embedding / kernel a `weight` becomes is read from the Flax model's own parameter
paths, and a checkpoint of the bare model loads into a task model (and back) by adding or dropping
`base_model_prefix`, as the reference does. Tensors keep their dtype and bits (bfloat16 included).
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Iterable, Mapping, Set, Tuple

import numpy as np

logger = logging.getLogger(__name__)

Path = Tuple[str, ...]


def _transpose(tensor: Any) -> Any:
    return tensor.transpose(2, 3, 1, 0) if tensor.ndim == 4 else tensor.T


def pt_to_flax(state: Dict[str, Any], expected: Set[Path], prefix: str) -> Dict[Path, Any]:
    """PyTorch state dict (key -> array) -> flat Flax params {path: array} for a model whose parameter
    paths are `expected`. Keys that match no expected path are kept under their converted path; the
    caller reports them as unexpected. `state` is emptied as it goes, so that a big checkpoint is not
    held twice (original and transposed)."""
    model_has_prefix = any(path[0] == prefix for path in expected)
    state_has_prefix = any(key.split(".", 1)[0] == prefix for key in state)
    out: Dict[Path, Any] = {}
    for key in list(state):
        tensor = state.pop(key)
        path = tuple(key.split("."))
        if prefix and state_has_prefix and not model_has_prefix and path[0] == prefix:
            path = path[1:]
        elif prefix and model_has_prefix and not state_has_prefix and (prefix, *path[:-1]) in _parents(expected):
            path = (prefix,) + path
        path, tensor = _rename(path, tensor, expected)
        out[path] = tensor
    return out


def _parents(expected: Set[Path]) -> Set[Path]:
    return {path[:-1] for path in expected}


def _rename(path: Path, tensor: Any, expected: Set[Path]) -> Tuple[Path, Any]:
    parent, last = path[:-1], path[-1]
    if last in ("weight", "gamma") and parent + ("scale",) in expected:
        return parent + ("scale",), tensor
    if last == "weight" and parent + ("embedding",) in expected:
        return parent + ("embedding",), tensor
    if last == "weight" and tensor.ndim in (2, 4):
        return parent + ("kernel",), _transpose(tensor)
    if last == "beta":
        return parent + ("bias",), tensor
    return path, tensor


def flax_to_pt(params: Mapping[Path, Any]) -> Dict[str, Any]:
    """Flat Flax params {path: array} -> PyTorch state dict {key: array} (kernels transposed back)."""
    out = {}
    for path, tensor in params.items():
        parent, last = path[:-1], path[-1]
        if last == "kernel":
            tensor = _transpose(tensor)
        if last in ("kernel", "scale", "embedding"):
            last = "weight"
        out[".".join(parent + (last,))] = tensor
    return out


def flatten(tree: Mapping[str, Any], parent: Path = ()) -> Dict[Path, Any]:
    """Nested dict -> {path tuple: leaf}."""
    out: Dict[Path, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, parent + (key,)))
        else:
            out[parent + (key,)] = value
    return out


def unflatten(flat: Iterable[Tuple[Path, Any]] | Mapping[Path, Any]) -> Dict[str, Any]:
    """{path tuple: leaf} -> nested dict."""
    items = flat.items() if isinstance(flat, Mapping) else flat
    tree: Dict[str, Any] = {}
    for path, value in items:
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def torch_to_numpy(tensor: Any) -> np.ndarray:
    """A torch tensor as a numpy array; bfloat16 (which numpy lacks) as a jax bfloat16 array, bit for bit."""
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        import jax.numpy as jnp

        return np.asarray(tensor.view(torch.int16).numpy()).view(jnp.bfloat16)
    return tensor.numpy()
