"""Weights in 2 MB memory pages on Linux, for faster matrix-vector products on CPU.

Decoding one token at a time multiplies one row by every weight, so its speed is the speed of
reading the weights from memory. With the usual 4 KB pages that read stalls on address translation
every 4 KB; in 2 MB pages ("transparent huge pages") it does not. On the 2-core Xeon VM of
benchmarks/README.md the decoding matmuls of CodeGen-350M's shape ran 3-10% faster and greedy
decoding 0-5% faster. The weights are the same bytes, only where they lie changes; results are the same
up to float rounding (not promised bit for bit: BLAS libraries may take another code path, and sum in
another order, for memory aligned otherwise).

`from_pretrained` calls `place_weights` on a CPU model: every parameter of at least 2 MB is copied
into a buffer that starts on a 2 MB boundary, and the whole 2 MB pages it covers are asked for as
huge pages (madvise MADV_HUGEPAGE before the copy, MADV_COLLAPSE after it, for memory that was
already mapped in small pages). Smaller parameters stay where they are. The copy is made one
parameter at a time (peak memory: the model plus its largest weight), costs ~0.2 s per GB, and
keeps dtype, shape, values and the Parameter objects. Each parameter keeps a storage of its own
(up to 2 MB larger than the tensor; the unused part is never touched, so it takes no memory).

Nothing happens where madvise is missing (not Linux) or refused (huge pages switched off by the
system: /sys/kernel/mm/transparent_hugepage/enabled = never), or with `POLYFORMER_HUGE_PAGES=0`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from typing import Callable, Optional

import torch
import torch.nn as nn

logger = logging.getLogger(__name__)

HUGE_PAGE = 2 << 20  # bytes (x86-64 and most arm64 kernels)
_MADV_HUGEPAGE, _MADV_COLLAPSE = 14, 25  # linux/mman.h; MADV_COLLAPSE since Linux 6.1

ENABLED: bool = os.environ.get("POLYFORMER_HUGE_PAGES", "1").strip().lower() not in ("0", "false", "no", "off")

_madvise: Optional[Callable[[int, int, int], int]] = None
_looked_up = False


def _libc_madvise() -> Optional[Callable[[int, int, int], int]]:
    """libc's madvise(address, length, advice) -> 0 | -1, or None off Linux (looked up once)."""
    global _madvise, _looked_up
    if not _looked_up:
        _looked_up = True
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
                function = libc.madvise
                function.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
                function.restype = ctypes.c_int
                _madvise = function
            except (OSError, AttributeError) as error:
                logger.debug("huge pages off: madvise not found (%s)", error)
    return _madvise


def in_huge_pages(tensor: torch.Tensor) -> torch.Tensor:
    """A copy of a CPU `tensor` (at least 2 MB) starting on a 2 MB boundary, its whole 2 MB pages
    advised as huge pages; `tensor` itself when it is smaller, not on CPU, or madvise is unavailable
    or refused."""
    nbytes = tensor.numel() * tensor.element_size()
    madvise = _libc_madvise()
    if madvise is None or nbytes < HUGE_PAGE or tensor.device.type != "cpu":
        return tensor
    buffer = torch.empty(nbytes + HUGE_PAGE, dtype=torch.uint8)  # not touched yet: no memory used
    start = -buffer.data_ptr() % HUGE_PAGE
    address, length = buffer.data_ptr() + start, nbytes // HUGE_PAGE * HUGE_PAGE
    if madvise(address, length, _MADV_HUGEPAGE) != 0:
        logger.debug("huge pages refused by the system (errno %d); weights stay as they are", ctypes.get_errno())
        return tensor
    placed = buffer[start:start + nbytes].view(tensor.dtype).view(tensor.shape)
    placed.copy_(tensor)
    madvise(address, length, _MADV_COLLAPSE)  # pages mapped small before the advice; refusal is harmless
    return placed


def place_weights(model: nn.Module) -> int:
    """Move every CPU parameter of `model` of at least 2 MB into huge pages (see the module docstring);
    returns how many were moved. Tied parameters (one object under two names) move once."""
    if not ENABLED or _libc_madvise() is None:
        return 0
    moved = 0
    with torch.no_grad():
        for parameter in model.parameters():  # each object once
            placed = in_huge_pages(parameter.data)
            if placed.data_ptr() != parameter.data_ptr():
                parameter.data = placed
                moved += 1
    return moved
