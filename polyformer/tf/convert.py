"""PyTorch <-> TensorFlow weights: one generic name and layout rule, and tf_model.h5 in transformers' layout.

A TF weight is named by its path in the module tree, as transformers' TF classes name it (without the
model's own name): every layer is named after its PyTorch attribute, and list items `name_._i`. The PyTorch
key follows from the name alone:

    distilbert/transformer/layer_._0/attention/q_lin/kernel  <->  distilbert.transformer.layer.0.attention.q_lin.weight
    kernel (in, out)           <-> weight (out, in)            transposed
    conv kernel (kh, kw, I, O) <-> weight (O, I, kh, kw)
    gamma / beta               <-> weight / bias               (LayerNorm, BatchNorm)
    embeddings                 <-> weight                      (some reference embeddings are named "weight" already)
    moving_mean / moving_variance <-> running_mean / running_var

A checkpoint of the bare model loads into a task model and back by adding or dropping `base_model_prefix`
(the TF main layer is always named after it, the PyTorch bare model has no prefix). Shapes that differ only
by dimensions of one (GroupViT's logit_scale: () in PyTorch, (1,) in TF) are reshaped.

tf_model.h5 is what tf-keras' `save_weights` writes for transformers' TF models: one group per top-level layer
(attribute `layer_names`), each with the attribute `weight_names` (`<model name>/<weight name>:0`, shared
weights listed in every layer that uses them) and a dataset per weight under that name.

Past `max_shard_size` the weights go, in order, into tf_model-0000i-of-0000n.h5 files as 4.37 shards them: each
file holds one dataset per weight at its root named `<weight name>:0` (no model name), listed in the root
attribute `layer_names`; tf_model.h5.index.json maps `<model name>/<weight name>:0` to its file and holds
metadata.total_size in bytes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from typing import Dict, Iterator, List, Mapping, Optional, Tuple, Union

import numpy as np

from ..load_report import log_unused_weights
from .backend import keras

logger = logging.getLogger(__name__)

TF_WEIGHTS = "tf_model.h5"
TF_WEIGHTS_INDEX = "tf_model.h5.index.json"
_LAST = {"kernel": "weight", "gamma": "weight", "beta": "bias", "embeddings": "weight",
         "moving_mean": "running_mean", "moving_variance": "running_var"}
_H5_ATTRIBUTE_LIMIT = 64512  # bytes an HDF5 object header holds; longer name lists are split as tf-keras splits them


# --- names ----------------------------------------------------------------------------------------
def _children(layer) -> Iterator[Tuple[str, object]]:
    """(name, sublayer or variable) for the public attributes of `layer`, lists flattened."""
    for attr, value in vars(layer).items():
        if attr.startswith("_"):
            continue
        items = value if isinstance(value, (list, tuple)) else [value]
        for item in items:
            if isinstance(item, keras.layers.Layer):
                yield item.name, item
            elif isinstance(item, keras.Variable):
                yield item.name, item


def _walk(layer, prefix: str, seen: set) -> Iterator[Tuple[str, keras.Variable]]:
    for name, child in _children(layer):
        if isinstance(child, keras.Variable):
            if id(child) not in seen:
                seen.add(id(child))
                yield prefix + name, child
        else:
            yield from _walk(child, f"{prefix}{name}/", seen)


def named_weights(model) -> List[Tuple[str, keras.Variable]]:
    """Every variable once, under the name of the first path that reaches it (its owner's)."""
    return list(_walk(model, "", set()))


def pt_key(tf_name: str) -> Tuple[str, bool]:
    """TF weight name -> (PyTorch key, whether the array is a kernel to transpose)."""
    parts = tf_name.replace("_._", "/").split("/")
    last = parts[-1]
    return ".".join(parts[:-1] + [_LAST.get(last, last)]), last == "kernel"


def to_tf_layout(array: np.ndarray, is_kernel: bool) -> np.ndarray:
    if not is_kernel:
        return array
    return array.transpose(2, 3, 1, 0) if array.ndim == 4 else array.T


def to_pt_layout(array: np.ndarray, is_kernel: bool) -> np.ndarray:
    if not is_kernel:
        return array
    return array.transpose(3, 2, 0, 1) if array.ndim == 4 else array.T


# --- filling a model --------------------------------------------------------------------------------
def _fit(array: np.ndarray, shape: Tuple[int, ...]) -> Optional[np.ndarray]:
    if array.shape == shape:
        return array
    squeeze = lambda s: tuple(d for d in s if d != 1)  # noqa: E731
    return array.reshape(shape) if squeeze(array.shape) == squeeze(shape) else None


def assign(model, arrays: Mapping[str, np.ndarray], *, from_pt: bool, prefix: str,
           ignore_mismatched_sizes: bool = False) -> Dict[str, list]:
    """Fill `model`'s variables from PyTorch keys (`from_pt`) or TF weight names; returns the loading info
    (missing_keys, unexpected_keys, mismatched_keys in the source's names)."""
    used, missing, mismatched = set(), [], []
    for tf_name, variable in named_weights(model):
        key, is_kernel = pt_key(tf_name) if from_pt else (tf_name, False)
        sep = "." if from_pt else "/"
        for candidate in (key, f"{prefix}{sep}{key}", key[len(prefix) + 1:] if key.startswith(prefix + sep) else None):
            if candidate in arrays:
                break
        else:
            missing.append(key)
            continue
        used.add(candidate)
        array = _fit(to_tf_layout(np.asarray(arrays[candidate]), is_kernel), tuple(variable.shape))
        if array is None:
            source = tuple(arrays[candidate].shape)
            if not ignore_mismatched_sizes:
                raise ValueError(f"{candidate}: the checkpoint holds shape {source}, {type(model).__name__} expects "
                                 f"{tuple(variable.shape)} (pass ignore_mismatched_sizes=True to re-initialise it)")
            mismatched.append((candidate, source, tuple(variable.shape)))
            continue
        variable.assign(array.astype(variable.dtype))
    unexpected = sorted(set(arrays) - used)
    if missing:
        logger.warning("%s: weights not in the checkpoint, newly initialised: %s", type(model).__name__, missing)
    sep = "." if from_pt else "/"
    log_unused_weights(logger, type(model).__name__, unexpected, getattr(model.config, "architectures", None),
                       {name.split(sep, 1)[0] for name in arrays if name in used}, sep=sep)
    return {"missing_keys": missing, "unexpected_keys": unexpected, "mismatched_keys": mismatched, "error_msgs": []}


def pt_state(model) -> Dict[str, np.ndarray]:
    """The model's weights under PyTorch keys and layouts (with its base_model_prefix, as a task model)."""
    return {pt_key(name)[0]: to_pt_layout(v.numpy(), pt_key(name)[1]) for name, v in named_weights(model)}


def read_pt_checkpoint(files: List[str]) -> Dict[str, np.ndarray]:
    """PyTorch weight files -> {key: float / int numpy array}; safetensors without torch where numpy can
    hold the dtype, everything else through polyformer.checkpoints (torch, weights_only)."""
    state: Dict[str, np.ndarray] = {}
    for path in files:
        if path.endswith(".safetensors"):
            from safetensors.numpy import load_file

            try:
                state.update(load_file(path))
                continue
            except Exception:  # bfloat16 (numpy has no such dtype), or a damaged file: torch's reader names it
                pass
        from ..checkpoints import load_file as load_torch

        for key, tensor in load_torch(path).items():
            state[key] = (tensor.float() if tensor.is_floating_point() else tensor).numpy()
    return state


# --- tf_model.h5 ------------------------------------------------------------------------------------
def _read_names(group, name: str) -> List[str]:
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, i = [], 0
        while f"{name}{i}" in group.attrs:
            values += list(group.attrs[f"{name}{i}"])
            i += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _write_names(group, name: str, values: List[str]) -> None:
    data = np.asarray([v.encode("utf8") for v in values], dtype=bytes) if values else np.asarray([], dtype="S1")
    chunks = max(1, -(-data.nbytes // _H5_ATTRIBUTE_LIMIT))
    if chunks == 1:
        group.attrs[name] = data
    else:
        for i, part in enumerate(np.array_split(data, chunks)):
            group.attrs[f"{name}{i}"] = part


def read_h5(paths: Union[str, List[str]]) -> Dict[str, np.ndarray]:
    """tf_model.h5, or its shards -> {weight name without the model's name and ":0": array}."""
    import h5py

    from ..checkpoints import CheckpointError
    from ..hub import cache_hint

    weights = {}
    for path in [paths] if isinstance(paths, str) else paths:
        try:
            with h5py.File(path, "r") as f:
                for layer in _read_names(f, "layer_names"):
                    item = f[layer]
                    if isinstance(item, h5py.Dataset):  # a shard: one dataset per weight
                        weights[layer.removesuffix(":0")] = np.asarray(item)
                        continue
                    for full in _read_names(item, "weight_names"):
                        name = full.split("/", 1)[1] if "/" in full else full
                        weights[name.removesuffix(":0")] = np.asarray(item[full])
        except (OSError, KeyError) as err:  # h5py's errors for a truncated or damaged file
            raise CheckpointError(f"{path} could not be read as a TF h5 weights file: {err}.{cache_hint(path)}") from err
    return weights


def write_h5(path: str, model) -> None:
    """Write `model`'s weights as tf_model.h5 (through a temporary file, renamed when complete)."""
    import h5py

    from ..hub import atomic_path

    names = {id(v): name for name, v in named_weights(model)}
    layers: Dict[str, List[keras.Variable]] = {}
    for name, child in _children(model):
        if isinstance(child, keras.layers.Layer):
            layers[name] = [v for v in child.weights if id(v) in names]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = keras.__version__
        _write_names(f, "layer_names", list(layers))
        for layer, variables in list(layers.items()) + [("top_level_model_weights", [])]:
            group = f.create_group(layer)
            full = [f"{model.name}/{names[id(v)]}:0" for v in variables]
            _write_names(group, "weight_names", full)
            for name, variable in zip(full, variables):
                group.create_dataset(name, data=variable.numpy())


def save_h5_checkpoint(directory: str, model, max_shard_size: Union[int, str]) -> List[str]:
    """tf_model.h5, or past `max_shard_size` its shards and index (see the module docstring), into `directory`;
    files of an earlier save that this one does not replace are removed. Returns the paths written."""
    import h5py

    from ..checkpoints import parse_size
    from ..hub import atomic_path, write_json

    limit = parse_size(max_shard_size)
    blocks: List[List[Tuple[str, keras.Variable]]] = [[]]
    size = total = 0
    for name, variable in named_weights(model):
        nbytes = int(np.prod(variable.shape)) * np.dtype(variable.dtype).itemsize
        if blocks[-1] and size + nbytes > limit:
            blocks.append([])
            size = 0
        blocks[-1].append((name, variable))
        size += nbytes
        total += nbytes
    index_path = os.path.join(directory, TF_WEIGHTS_INDEX)
    if len(blocks) == 1:
        written = [os.path.join(directory, TF_WEIGHTS)]
        write_h5(written[0], model)
        _remove_stale_h5(directory, keep={TF_WEIGHTS})
        return written
    files = [f"tf_model-{i:05d}-of-{len(blocks):05d}.h5" for i in range(1, len(blocks) + 1)]
    with contextlib.ExitStack() as stack:
        for file, block in zip(files, blocks):
            tmp = stack.enter_context(atomic_path(os.path.join(directory, file)))
            with h5py.File(tmp, "w") as f:
                datasets = sorted(f"{name}:0" for name, _ in block)  # 4.37 writes them sorted by name
                values = {f"{name}:0": variable for name, variable in block}
                for dataset in datasets:
                    f.create_dataset(dataset, data=values[dataset].numpy())
                if sum(len(d) for d in datasets) < _H5_ATTRIBUTE_LIMIT // 2:
                    f.attrs["layer_names"] = [d.encode("utf8") for d in datasets]  # variable-length, as 4.37 writes
                else:
                    _write_names(f, "layer_names", datasets)
    weight_map = {f"{model.name}/{name}:0": file for file, block in zip(files, blocks) for name, _ in block}
    write_json(index_path, {"metadata": {"total_size": total}, "weight_map": weight_map})
    _remove_stale_h5(directory, keep=set(files) | {TF_WEIGHTS_INDEX})
    logger.info("The model is bigger than max_shard_size (%s): split in %d shards, indexed in %s", max_shard_size,
                len(files), index_path)
    return [os.path.join(directory, f) for f in files] + [index_path]


def _remove_stale_h5(directory: str, keep: set) -> None:
    from ..saving import remove_file

    pattern = re.compile(r"^tf_model(-\d{5}-of-\d{5})?\.h5(\.index\.json)?$")
    for name in os.listdir(directory):
        if pattern.match(name) and name not in keep:
            remove_file(os.path.join(directory, name))  # within the save's transaction (saving.py)


def find_tf_weights(name: str, **hub_kwargs) -> Optional[List[str]]:
    """The TF weight files of a folder or Hub repo: [tf_model.h5], its shards (through tf_model.h5.index.json),
    or None."""
    from ..hub import read_json, resolve_file

    if os.path.isfile(name) and name.endswith(".h5"):
        return [name]
    path = resolve_file(name, TF_WEIGHTS, required=False, **hub_kwargs)
    if path is not None:
        return [path]
    index = resolve_file(name, TF_WEIGHTS_INDEX, required=False, **hub_kwargs)
    if index is None:
        return None
    weight_map = read_json(index, "shard index").get("weight_map")
    if not isinstance(weight_map, dict):
        raise ValueError(f"{index} is not a valid shard index: no weight_map")
    try:
        return [resolve_file(name, shard, **hub_kwargs) for shard in sorted(set(weight_map.values()))]
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{TF_WEIGHTS_INDEX} names a shard that is missing: {err}") from None
