"""Training checkpoints that survive a crash at any moment.

A checkpoint is a folder `step-00000100/` inside the checkpoint folder, holding

    model.safetensors     the trained module's tensors (tied tensors stored once per name, as copies)
    training_state.pt     optimizer, scheduler, step, data position, RNG states: `torch.save` of tensors,
                          numbers, strings, lists, tuples and dicts only, read back with
                          `torch.load(weights_only=True)` (nothing is unpickled beyond those)

It is written into a hidden temporary folder beside its final name, every file and the folder fsync'ed,
then renamed: a reader sees either no `step-N` or a complete one, so a process killed during a save
(even by SIGKILL) leaves the previous checkpoint as the latest. Older checkpoints beyond `keep` are
removed only after the new one is in place; leftover temporary folders are ignored (and removed by the
next save).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from safetensors.torch import load_file, save_file

from ..saving import fsync_file, fsync_folder

logger = logging.getLogger(__name__)

__all__ = ["CheckpointError", "latest_checkpoint", "load_checkpoint", "save_checkpoint"]

MODEL_FILE = "model.safetensors"
STATE_FILE = "training_state.pt"
_NAME = re.compile(r"^step-(\d{8,})$")

# Tests only: called with a stage name ("model-written", "state-written") while a save is under way, so
# that a test can kill the process at that point. Never set by the library.
_fault_hook: Optional[Callable[[str], None]] = None


class CheckpointError(ValueError):
    """A checkpoint folder is missing a file or holds something other than training state."""


def save_checkpoint(folder: str | os.PathLike, step: int, tensors: dict[str, torch.Tensor], state: dict[str, Any],
                    *, keep: int = 2) -> Path:
    """Write checkpoint `step` into `folder` atomically; keep the newest `keep` (>= 1) checkpoints.

    Returns the path of the new `step-N` folder.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{step:08d}"
    tmp = folder / f".{final.name}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()
    try:
        flat = {name: t.detach().to("cpu").clone().contiguous() for name, t in tensors.items()}  # unshared
        save_file(flat, str(tmp / MODEL_FILE), metadata={"format": "pt"})
        fsync_file(str(tmp / MODEL_FILE))
        _fault("model-written")
        torch.save(state, tmp / STATE_FILE)
        fsync_file(str(tmp / STATE_FILE))
        _fault("state-written")
        fsync_folder(str(tmp))
        if final.exists():  # the same step saved again (a resumed run): replace it
            shutil.rmtree(final)
        os.rename(tmp, final)
        fsync_folder(str(folder))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(folder, keep)
    logger.info("saved checkpoint %s", final)
    return final


def latest_checkpoint(folder: str | os.PathLike) -> Optional[Path]:
    """The newest complete `step-N` folder in `folder`, or None."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    done = [p for p in folder.iterdir() if _NAME.match(p.name) and p.is_dir()
            and (p / MODEL_FILE).is_file() and (p / STATE_FILE).is_file()]
    return max(done, key=lambda p: int(_NAME.match(p.name).group(1)), default=None)


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, state) of a checkpoint folder written by `save_checkpoint`."""
    path = Path(path)
    for name in (MODEL_FILE, STATE_FILE):
        if not (path / name).is_file():
            raise CheckpointError(f"{path} is not a training checkpoint: it has no {name}")
    try:
        state = torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses anything but plain data: say which file
        raise CheckpointError(f"{path / STATE_FILE} is not a plain training state ({e})") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{path / STATE_FILE} holds a {type(state).__name__}, expected a dict")
    return load_file(str(path / MODEL_FILE)), state


def _fault(stage: str) -> None:
    if _fault_hook is not None:
        _fault_hook(stage)


def _prune(folder: Path, keep: int) -> None:
    done = sorted((p for p in folder.iterdir() if _NAME.match(p.name) and p.is_dir()),
                  key=lambda p: int(_NAME.match(p.name).group(1)))
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in folder.glob(".step-*.tmp"):  # from a process killed while saving
        shutil.rmtree(stale, ignore_errors=True)
