"""Data-parallel training with one code path for one process, `torchrun` and `accelerate launch`.

`setup_parallel()` looks at the process it runs in (at call time, never at import):

- `WORLD_SIZE` unset or 1 and no accelerate config in the environment: one process (`Parallel`);
- several processes started by `torchrun` or `accelerate launch` (both set `RANK`, `WORLD_SIZE`,
  `MASTER_ADDR`, ...): accelerate's `Accelerator` when accelerate is installed (so an FSDP or other
  config given to `accelerate launch --config_file` applies), else `torch.distributed` with DDP directly.
  The process group is gloo on CPU, NCCL on CUDA.

A loop written against `Parallel` works unchanged under all three:

    par = setup_parallel()
    model, optimizer = par.prepare(model, optimizer)
    for k, batch in enumerate(micro_batches):
        with par.accumulate(model, sync=k == len(micro_batches) - 1):
            par.backward(loss(model, batch))
    par.clip_grad_norm_(model, 1.0); optimizer.step(); optimizer.zero_grad()

Gradients are averaged over processes (DDP's rule), so a loss that each process divides by the *global*
count of its items, times `world_size`, gives one process's gradient on the whole global batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Optional

import torch
import torch.distributed as dist
import torch.nn as nn

logger = logging.getLogger(__name__)

__all__ = ["Parallel", "setup_parallel"]

BACKENDS = ("auto", "accelerate", "torch")


class Parallel:
    """One process; the base of the multi-process backends (same methods)."""

    name = "single"

    def __init__(self, device: Optional[torch.device] = None):
        self.rank, self.world_size = 0, 1
        self.device = device or torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def shards_optimizer(self) -> bool:
        """Whether each process holds only a shard of the optimizer state (FSDP, DeepSpeed): then the main
        process's `optimizer.state_dict()` is not the whole state."""
        return False

    def prepare(self, model: nn.Module, optimizer: torch.optim.Optimizer, *, find_unused_parameters: bool = False):
        """(model, optimizer) ready to train: on this process's device, wrapped for data parallelism."""
        return model.to(self.device), optimizer

    def unwrap(self, model: nn.Module) -> nn.Module:
        return model

    def accumulate(self, model: nn.Module, sync: bool):
        """Context of one micro-batch's backward; gradients are exchanged only when `sync`."""
        return contextlib.nullcontext()

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def clip_grad_norm_(self, model: nn.Module, max_norm: float) -> torch.Tensor:
        return torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)

    def full_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The unwrapped model's whole state dict (gathered from the shards under FSDP) on the main process."""
        return self.unwrap(model).state_dict()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """(world_size, *tensor.shape): every process's tensor, in rank order."""
        return tensor.unsqueeze(0)

    def barrier(self) -> None:
        pass

    def close(self) -> None:
        pass


class TorchParallel(Parallel):
    """torch.distributed + DistributedDataParallel, for processes that torchrun (or a test) started."""

    name = "torch"

    def __init__(self):
        cuda = torch.cuda.is_available()
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if cuda else "gloo")
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", self.rank))
        self.device = torch.device("cuda", local) if cuda else torch.device("cpu")
        if cuda:
            torch.cuda.set_device(self.device)

    def prepare(self, model, optimizer, *, find_unused_parameters=False):
        model = model.to(self.device)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids,
                                                   find_unused_parameters=find_unused_parameters), optimizer

    def unwrap(self, model):
        return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model

    def accumulate(self, model, sync):
        return contextlib.nullcontext() if sync else model.no_sync()

    def all_reduce_sum(self, tensor):
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    def all_gather(self, tensor):
        out = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(out, tensor.contiguous())
        return torch.stack(out)

    def barrier(self):
        dist.barrier()

    def close(self):
        if dist.is_initialized():
            dist.destroy_process_group()


class AccelerateParallel(TorchParallel):
    """accelerate's Accelerator (DDP, FSDP, ... as `accelerate launch` configured it)."""

    name = "accelerate"

    def __init__(self):
        from accelerate import Accelerator  # optional extra: polyformer[accelerate]

        # On a machine without CUDA, accelerate sees the processes (MULTI_CPU, gloo) only with cpu=True.
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available())
        self.rank, self.world_size = self.accelerator.process_index, self.accelerator.num_processes
        expected = int(os.environ.get("WORLD_SIZE", "1"))
        if self.world_size != expected:
            raise RuntimeError(f"accelerate set up {self.world_size} process(es) but WORLD_SIZE is {expected}")
        self.device = self.accelerator.device

    def prepare(self, model, optimizer, *, find_unused_parameters=False):
        if find_unused_parameters:
            from accelerate.utils import DistributedDataParallelKwargs

            self.accelerator.ddp_handler = DistributedDataParallelKwargs(find_unused_parameters=True)
        return self.accelerator.prepare(model, optimizer)

    def unwrap(self, model):
        return self.accelerator.unwrap_model(model)

    @property
    def shards_optimizer(self) -> bool:
        return self.accelerator.distributed_type.name in ("FSDP", "DEEPSPEED")

    def accumulate(self, model, sync):
        return contextlib.nullcontext() if sync or self.world_size == 1 else self.accelerator.no_sync(model)

    def backward(self, loss):
        self.accelerator.backward(loss)

    def clip_grad_norm_(self, model, max_norm):
        return self.accelerator.clip_grad_norm_(model.parameters(), max_norm)

    def full_state_dict(self, model):
        return self.accelerator.get_state_dict(model)

    def all_reduce_sum(self, tensor):
        return self.accelerator.reduce(tensor.clone(), reduction="sum") if self.world_size > 1 else tensor

    def all_gather(self, tensor):
        if self.world_size == 1:
            return tensor.unsqueeze(0)
        return self.accelerator.gather(tensor.unsqueeze(0))

    def barrier(self):
        self.accelerator.wait_for_everyone()

    def close(self):
        self.accelerator.end_training()


def setup_parallel(backend: str = "auto") -> Parallel:
    """The `Parallel` for this process: "auto" (accelerate if several processes or an accelerate config
    and accelerate is installed, else torch.distributed, else one process), "accelerate" or "torch"."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    launched_by_accelerate = any(key.startswith("ACCELERATE_") for key in os.environ)
    if backend == "accelerate" or (backend == "auto" and (world > 1 or launched_by_accelerate)):
        try:
            par = AccelerateParallel()
        except ImportError:
            if backend == "accelerate":
                raise ImportError("backend='accelerate' needs accelerate: pip install 'polyformer[accelerate]'") \
                    from None
            par = TorchParallel() if world > 1 else Parallel()
    elif world > 1:
        par = TorchParallel()
    else:
        par = Parallel(torch.device("cuda") if torch.cuda.is_available() else None)
    if par.world_size > 1:
        logger.info("data-parallel training: process %d of %d (%s, %s)", par.rank, par.world_size, par.name,
                    par.device)
    return par

