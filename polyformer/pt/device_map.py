"""`from_pretrained(device_map=...)`: which device each weight goes to — GPUs, the CPU or disk — through accelerate.

`from_pretrained` builds the model on the meta device, then:

1. `resolve_device_map` turns the argument into {module or parameter name prefix: device}. "auto", "balanced",
   "balanced_low_0" and "sequential" are inferred with accelerate's public API (`get_balanced_memory` /
   `get_max_memory`, then `infer_auto_device_map`), never splitting the class's `_no_split_modules` and keeping
   tied parameters together; a single device ("cpu", "cuda:1", 0, torch.device) takes the whole model; a dict
   is checked (known names, every weight covered, valid devices, tied weights on one device).
2. `Placement.place` is called for each checkpoint tensor as it is loaded: it goes straight to its device
   (a CPU tensor of the right dtype stays memory-mapped). A weight mapped to "disk" is not materialised: it
   becomes an entry of an accelerate offload index — pointing into the checkpoint's safetensors file, or
   written to `offload_folder` as a .dat file (`accelerate.utils.offload_weight`) for .bin checkpoints and
   newly initialised weights — and the parameter stays on the meta device.
3. `dispatch` hands the model to `accelerate.dispatch_model`, whose hooks load disk weights and move inputs
   between devices at each forward, and sets `model.hf_device_map`.

accelerate is imported only here, and only when a device_map is passed.
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import torch
import torch.nn as nn

logger = logging.getLogger(__name__)

INFERRED_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")
Device = Union[int, str]  # a GPU index, "cpu" or "disk", as accelerate's maps hold them


def require_accelerate():
    """The accelerate module, or an ImportError saying what to install."""
    try:
        import accelerate
    except ImportError as error:
        raise ImportError("from_pretrained(device_map=...) needs accelerate: pip install accelerate "
                          "(or pip install 'polyformer[accelerate]')") from error
    return accelerate


def check_device(value: Any, where: str) -> Device:
    """One device of a map -> an int GPU index, "cpu" or "disk"; a ValueError naming `where` otherwise."""
    expected = "a GPU index (int), 'cuda', 'cuda:N', a torch.device, 'cpu' or 'disk'"
    if isinstance(value, bool) or not isinstance(value, (int, str, torch.device)):
        raise ValueError(f"{where} must be {expected}, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{where} must be {expected}, got the negative index {value}; use 'cpu' for the CPU")
        index = value
    elif value == "disk":
        return "disk"
    else:
        try:
            device = torch.device(value)
        except RuntimeError:
            raise ValueError(f"{where} must be {expected}, got {value!r}") from None
        if device.type == "cpu":
            return "cpu"
        if device.type != "cuda":
            raise ValueError(f"{where} must be {expected}, got {value!r} (polyformer maps to CUDA GPUs, the CPU and disk)")
        index = torch.cuda.current_device() if device.index is None and torch.cuda.is_available() else (device.index or 0)
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if index >= available:
        raise ValueError(f"{where} names GPU {index}, but {available} CUDA device(s) are available")
    return index


def _prefix_device(name: str, device_map: Dict[str, Device]) -> Optional[Device]:
    """The device of the longest prefix of `name` (split at dots) in `device_map`; None if none."""
    while True:
        if name in device_map:
            return device_map[name]
        if not name:
            return None
        name = name.rpartition(".")[0]


def _tensor_names(model: nn.Module) -> List[str]:
    """Every parameter and buffer name, tied aliases included."""
    names = [n for n, _ in model.named_parameters(remove_duplicate=False)]
    return names + [n for n, _ in model.named_buffers(remove_duplicate=False)]


def tied_groups(model: nn.Module) -> List[List[str]]:
    """Names of parameters that are one tensor (tied embeddings), in groups of two or more."""
    groups: Dict[int, List[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        groups.setdefault(id(param), []).append(name)
    return [names for names in groups.values() if len(names) > 1]


def resolve_device_map(model: nn.Module, device_map: Any, *, max_memory: Optional[Dict[Any, Any]],
                       dtype: torch.dtype) -> Dict[str, Device]:
    """The `device_map` argument of from_pretrained -> {name prefix: device} covering every weight of the
    (meta-device) `model`; see the module docstring."""
    if isinstance(device_map, str) and device_map in INFERRED_MAPS:
        return _infer(model, device_map, max_memory, dtype)
    if max_memory is not None:
        logger.warning("max_memory is only used with device_map in %s; ignored for device_map=%r",
                       INFERRED_MAPS, device_map)
    if isinstance(device_map, (str, int, torch.device)) and not isinstance(device_map, bool):
        where = f"device_map (a string other than {', '.join(repr(m) for m in INFERRED_MAPS)} is a device)"
        return {"": check_device(device_map, where)}
    if not isinstance(device_map, dict):
        raise TypeError(f"device_map must be one of {INFERRED_MAPS}, a device or a dict {{module name: device}}, "
                        f"got {type(device_map).__name__}")
    resolved = {}
    for key, value in device_map.items():
        if not isinstance(key, str):
            raise ValueError(f"device_map keys must be module names (str), got {key!r}")
        resolved[key] = check_device(value, f"device_map[{key!r}]")
    _check_covers(model, resolved)
    return resolved


def _check_covers(model: nn.Module, device_map: Dict[str, Device]) -> None:
    """Every key names a module or weight of the model, every weight has a device, tied weights share one."""
    modules = {name for name, _ in model.named_modules(remove_duplicate=False)}
    tensors = _tensor_names(model)
    unknown = sorted(k for k in device_map if k not in modules and k not in set(tensors))
    if unknown:
        raise ValueError(f"device_map names modules that {type(model).__name__} does not have: {unknown}")
    uncovered = [n for n in tensors if _prefix_device(n, device_map) is None]
    if uncovered:
        raise ValueError(f"device_map does not give a device to these weights of {type(model).__name__}: "
                         f"{uncovered[:10]}{' ...' if len(uncovered) > 10 else ''}; add their modules (or '')")
    for group in tied_groups(model):
        devices = {n: _prefix_device(n, device_map) for n in group}
        if len(set(devices.values())) > 1:
            raise ValueError(f"device_map puts tied weights (one tensor) on different devices: {devices}; "
                             "map them to the same device")


def _infer(model: nn.Module, strategy: str, max_memory: Optional[Dict[Any, Any]], dtype: torch.dtype) -> Dict[str, Device]:
    """accelerate's map for "auto" / "balanced" / "balanced_low_0" / "sequential" (as transformers 4.37)."""
    from accelerate import infer_auto_device_map
    from accelerate.utils import get_balanced_memory, get_max_memory

    if max_memory is not None and not isinstance(max_memory, dict):
        raise TypeError(f"max_memory must be a dict {{device: size}} such as {{0: '10GiB', 'cpu': '30GiB'}}, "
                        f"got {type(max_memory).__name__}")
    options = {"no_split_module_classes": model._get_no_split_modules(strategy), "dtype": dtype}
    if strategy == "sequential":
        max_memory = get_max_memory(max_memory)
    else:
        max_memory = get_balanced_memory(model, max_memory=max_memory, low_zero=strategy == "balanced_low_0", **options)
    model.tie_weights()
    device_map = infer_auto_device_map(model, max_memory=max_memory, **options)
    return {name: check_device(device, f"the inferred device_map[{name!r}]") for name, device in device_map.items()}


class Placement:
    """Where each tensor goes while from_pretrained loads: `place` returns it on its device, or None for a
    weight mapped to disk (then recorded in `index`, accelerate's offload index)."""

    def __init__(self, model: nn.Module, device_map: Dict[str, Device], offload_folder: Optional[str]):
        if "disk" in device_map.values():
            if offload_folder is None:
                raise ValueError("device_map sends some weights to 'disk' (offloaded): pass offload_folder=<a folder> "
                                 "for them")
            os.makedirs(offload_folder, exist_ok=True)
        self.device_map = device_map
        self.offload_folder = None if offload_folder is None else os.fspath(offload_folder)
        self.buffers = {n for n, _ in model.named_buffers(remove_duplicate=False)}
        self.index: Dict[str, Dict[str, Any]] = {}
        self.written: List[str] = []  # .dat files of this load

    def device(self, name: str) -> Device:
        return _prefix_device(name, self.device_map)

    def place(self, name: str, tensor: torch.Tensor, dtype: torch.dtype,
              source: Optional[Tuple[str, str]] = None) -> Optional[torch.Tensor]:
        """`tensor` (of weight `name`) in `dtype` (floating tensors) on its device; None when it goes to disk.
        source: (safetensors file, key in it) where the checkpoint holds it, so that disk weights are read
        from there instead of being copied."""
        device = self.device(name)
        target = dtype if tensor.is_floating_point() else tensor.dtype
        if device == "disk" and name not in self.buffers:  # buffers stay in memory (accelerate moves them)
            if source is not None and source[0].endswith(".safetensors"):
                self.index[name] = {"safetensors_file": source[0], "weight_name": source[1]}
                if tensor.is_floating_point():
                    self.index[name]["dtype"] = str(target).replace("torch.", "")
            else:
                from accelerate.utils import offload_weight

                offload_weight(tensor.to(target), name, self.offload_folder, index=self.index)
                self.written.append(name)
            return None
        where = "cpu" if device == "disk" else device
        return tensor.to(device=torch.device("cuda", where) if isinstance(where, int) else where, dtype=target)

    def offloaded(self, model: nn.Module) -> set:
        """The names left on the meta device on purpose: disk weights and their tied aliases (each alias gets
        the index entry of its tensor, as accelerate's hooks look weights up by module)."""
        for group in tied_groups(model):
            first = next((n for n in group if n in self.index), None)
            if first is None:
                continue
            for name in group:
                if name in self.index:
                    continue
                self.index[name] = self.index[first]
                if first in self.written:  # a .dat file is found by its weight's name: one per alias
                    shutil.copyfile(os.path.join(self.offload_folder, f"{first}.dat"),
                                    os.path.join(self.offload_folder, f"{name}.dat"))
                    self.written.append(name)
        return set(self.index)


def place_module_tensors(model: nn.Module, placement: Placement, names: Iterable[str], dtype: torch.dtype) -> None:
    """Move the given (already materialised, CPU) tensors of `model` to their devices: weights initialised
    by from_pretrained rather than read from the checkpoint, and non-persistent buffers."""
    for name in names:
        owner_name, _, attr = name.rpartition(".")
        owner = model.get_submodule(owner_name)
        tensor = getattr(owner, attr)
        if tensor is None or tensor.is_meta:
            continue
        placed = placement.place(name, tensor.detach(), dtype if tensor.is_floating_point() else tensor.dtype)
        if placed is None:
            placed = torch.empty_like(tensor, device="meta")
        if attr in owner._parameters:
            owner._parameters[attr] = nn.Parameter(placed, requires_grad=tensor.requires_grad)
        else:
            owner._buffers[attr] = placed


def dispatch(model: nn.Module, device_map: Dict[str, Device], placement: Placement) -> None:
    """accelerate.dispatch_model with the offload index of this load; sets `model.hf_device_map`."""
    from accelerate import dispatch_model
    from accelerate.utils import save_offload_index

    if placement.written:  # .dat files: their index beside them, as accelerate writes it
        save_offload_index({n: placement.index[n] for n in placement.written}, placement.offload_folder)
    skip = getattr(model, "_skip_keys_device_placement", None)
    # A block whose forward reads its submodules' weights directly (IDEFICS's vision embeddings) needs all
    # of them at once; accelerate hooks each module with weights apart wherever the map does not name the
    # block itself (e.g. {"": "disk"}), so the blocks preload theirs.
    preload = sorted({name for m in model.modules() for name in (getattr(m, "_no_split_modules", None) or [])})
    dispatch_model(model, device_map=device_map, offload_dir=placement.offload_folder,
                   offload_index=placement.index or None, skip_keys=skip, preload_module_classes=preload or None)
    model.hf_device_map = dict(device_map)


def is_dispatched(model: nn.Module) -> bool:
    """Whether accelerate hooks run around some module's forward (a model split over devices or disk)."""
    return any(hasattr(m, "_hf_hook") for m in model.modules())


def _offloaded_value(model: nn.Module, name: str) -> torch.Tensor:
    """Weight `name` of a dispatched model read back from where its hook keeps it (disk, or the CPU when the
    model computes on a GPU), on the CPU."""
    parts = name.split(".")
    for depth in range(len(parts) - 1, -1, -1):  # the owning module first, then its parents up to the model
        prefix = ".".join(parts[:depth])
        hook = getattr(model.get_submodule(prefix), "_hf_hook", None)
        for one in getattr(hook, "hooks", [hook]):  # a SequentialHook holds several
            weights = getattr(one, "weights_map", None)
            if getattr(one, "offload", False) and weights is not None:
                relative = name[len(prefix) + 1:] if prefix else name
                if relative in weights:
                    return weights[relative].cpu()
    raise RuntimeError(f"internal error: weight {name} is on the meta device and no accelerate hook holds it")


def gather_state_dict(model: nn.Module) -> Dict[str, torch.Tensor]:
    """`model.state_dict()` with every offloaded weight read back to the CPU, for save_pretrained; tied names
    share one tensor (saved once)."""
    state = model.state_dict()
    alias = {n: group[0] for group in tied_groups(model) for n in group}
    for name in [n for n, t in state.items() if t.is_meta]:
        source = alias.get(name, name)
        if source in state and not state[source].is_meta and source != name:
            state[name] = state[source]
        else:
            state[source] = state[name] = _offloaded_value(model, source)
    return state
