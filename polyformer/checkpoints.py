"""Weight files: find, read and write PyTorch checkpoints as transformers lays them out.

Reads model.safetensors, sharded model.safetensors.index.json, and legacy pytorch_model.bin (sharded or
not) with `torch.load(weights_only=True)` only — a checkpoint can never run code. Every file is found
through `hub.resolve_file`, so an index cannot name a shard outside the folder or repo. Writes
safetensors (or .bin on request), sharded by `max_shard_size`, as one save transaction (saving.py): a
save killed at any moment leaves the old weights or the new ones. Key names are the reference's.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Dict, Iterator, List, Optional, Tuple, Union

from .hub import InvalidFileError, UnsafePathError, atomic_path, cache_hint, read_json, resolve_file, write_json
from .saving import remove_file, save_transaction

logger = logging.getLogger(__name__)

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
PT_WEIGHTS = "pytorch_model.bin"
PT_INDEX = "pytorch_model.bin.index.json"


class CheckpointError(InvalidFileError):
    """A weight file is missing, truncated or corrupted."""


def find_weight_files(name: str, use_safetensors: Optional[bool] = None, **hub_kwargs) -> List[str]:
    """Local paths of the weight files of a folder or Hub repo, safetensors preferred."""
    candidates = [(SAFE_WEIGHTS, False), (SAFE_INDEX, True)]
    if use_safetensors is not True:
        candidates += [(PT_WEIGHTS, False), (PT_INDEX, True)]
    if use_safetensors is False:
        candidates = candidates[2:]
    for filename, is_index in candidates:
        path = resolve_file(name, filename, required=False, **hub_kwargs)
        if path is None:
            continue
        if not is_index:
            return [path]
        weight_map = read_json(path, "shard index").get("weight_map")
        if not isinstance(weight_map, dict):
            raise CheckpointError(f"{path} is not a valid shard index: no weight_map")
        bad = [shard for shard in weight_map.values() if not isinstance(shard, str)]
        if bad:
            raise CheckpointError(f"{path} is not a valid shard index: weight_map values must be file names, "
                                  f"got {bad[0]!r}")
        shards = sorted(set(weight_map.values()))
        try:
            return [resolve_file(name, shard, **hub_kwargs) for shard in shards]
        except UnsafePathError as err:
            raise UnsafePathError(f"{filename} names a shard outside {name!r}: {err}") from None
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{filename} names a shard that is missing: {err}") from None
    wanted = " or ".join(name for name, _ in candidates)
    raise FileNotFoundError(f"no weights found in {name!r}: expected {wanted}")


def load_file(path: str) -> Dict[str, "torch.Tensor"]:
    """All tensors of one weight file, memory-mapped where the format allows (not .bin files from torch < 1.6)."""
    import torch

    if path.endswith(".safetensors"):
        from safetensors import SafetensorError
        from safetensors.torch import load_file as load_safetensors

        try:
            return load_safetensors(path)
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{path} is not a readable safetensors file (truncated or corrupted?): "
                                  f"{err}.{cache_hint(path)}") from err
    try:
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as err:  # files from torch < 1.6 (e.g. the original BERT releases) cannot be mapped
            if "mmap" not in str(err):
                raise
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # the unpickler raises many types; the file is the problem either way
        raise CheckpointError(f"{path} could not be read as a PyTorch weights file (weights_only): "
                              f"{err}.{cache_hint(path)}") from err


def iter_state_dict(files: List[str]) -> Iterator[Tuple[str, "torch.Tensor"]]:
    for path in files:
        yield from load_file(path).items()


_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
          "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}


def parse_size(size: Union[int, str]) -> int:
    """5000000, "5MB", "10GiB" -> bytes."""
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?I?B)\s*", size.upper())
    if not match:
        raise ValueError(f"max_shard_size must be an int of bytes or like '5GB' / '500MiB', got {size!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def shard(state_dict: Dict[str, "torch.Tensor"], max_shard_size: int) -> List[Dict[str, "torch.Tensor"]]:
    """Split in key order into blocks of at most max_shard_size bytes (a bigger tensor gets its own)."""
    blocks: List[Dict[str, "torch.Tensor"]] = [{}]
    size = 0
    for key, tensor in state_dict.items():
        nbytes = tensor.numel() * tensor.element_size()
        if blocks[-1] and size + nbytes > max_shard_size:
            blocks.append({})
            size = 0
        blocks[-1][key] = tensor
        size += nbytes
    return blocks


def save_state_dict(
    state_dict: Dict[str, "torch.Tensor"],
    folder: str,
    *,
    safe_serialization: bool = True,
    max_shard_size: Union[int, str] = "5GB",
    metadata: Optional[Dict[str, str]] = None,
) -> List[str]:
    """Write weights into `folder` as transformers names them; returns the files written.

    The files are one save transaction (joining the caller's, e.g. save_pretrained's): they replace the
    old ones together, and weight files of an earlier save with other shard names are removed with them.
    """
    import torch

    state_dict = {k: v.detach().contiguous() for k, v in state_dict.items()}
    if not safe_serialization:  # torch.save writes a view's whole storage: each tensor gets its own
        state_dict = {k: v if v.untyped_storage().nbytes() == v.numel() * v.element_size() else v.clone()
                      for k, v in state_dict.items()}
    blocks = shard(state_dict, parse_size(max_shard_size))
    base, ext = (SAFE_WEIGHTS, ".safetensors") if safe_serialization else (PT_WEIGHTS, ".bin")
    stem = base[: -len(ext)]
    names = [base] if len(blocks) == 1 else [f"{stem}-{i:05d}-of-{len(blocks):05d}{ext}" for i in range(1, len(blocks) + 1)]

    with save_transaction(folder):
        for name, block in zip(names, blocks):
            with atomic_path(os.path.join(folder, name)) as tmp:
                if safe_serialization:
                    from safetensors.torch import save_file

                    save_file(block, tmp, metadata=metadata or {"format": "pt"})
                else:
                    torch.save(block, tmp)
        written = [os.path.join(folder, n) for n in names]

        index_name = SAFE_INDEX if safe_serialization else PT_INDEX
        index_path = os.path.join(folder, index_name)
        if len(blocks) > 1:
            total = sum(t.numel() * t.element_size() for t in state_dict.values())
            weight_map = {key: name for name, block in zip(names, blocks) for key in block}
            index = {"metadata": {"total_size": total}, "weight_map": weight_map}
            write_json(index_path, index)
            written.append(index_path)
        else:
            remove_file(index_path)
        _remove_stale_shards(folder, stem, ext, keep=set(names))
    return written


def _remove_stale_shards(folder: str, stem: str, ext: str, keep: set) -> None:
    pattern = re.compile(rf"^{re.escape(stem)}(-\d{{5}}-of-\d{{5}})?{re.escape(ext)}$")
    for name in os.listdir(folder):
        if pattern.match(name) and name not in keep:
            remove_file(os.path.join(folder, name))
