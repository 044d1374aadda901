"""DistributedDataParallel plumbing: who this process is, and the few collectives training needs.

Under ``torchrun`` (env ``WORLD_SIZE`` > 1) training uses nccl on CUDA and gloo on CPU; in a
single process every function here is a no-op.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from galmet._env import env_int


@dataclass
class Dist:
    """This process's place in a (possibly single-process) run.

    Attributes
    ----------
    rank, world, local_rank : int
        As torchrun sets them (0, 1, 0 for a single process).
    initialised_here : bool
        This process created the process group (and destroys it at the end).
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def main(self) -> bool:
        """The process that writes files (rank 0)."""
        return self.rank == 0


def dist_from_env() -> Dist:
    """The :class:`Dist` described by torchrun's environment variables."""
    world = env_int("WORLD_SIZE", 1)
    if world <= 1:
        return Dist()
    return Dist(env_int("RANK", 0), world, env_int("LOCAL_RANK", 0))


def init_dist(dist: Dist, device: torch.device) -> Dist:
    """Create the process group when running under torchrun and none exists yet."""
    import torch.distributed as td

    if dist.world <= 1 or td.is_initialized():
        return dist
    td.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dataclasses.replace(dist, initialised_here=True)


def finish_dist(dist: Dist) -> None:
    """Destroy the process group if this process created it."""
    if dist.initialised_here:
        import torch.distributed as td

        td.destroy_process_group()


def barrier(dist: Dist) -> None:
    """Wait for every process."""
    if dist.world > 1:
        import torch.distributed as td

        td.barrier()


def all_reduce(t: torch.Tensor, dist: Dist) -> torch.Tensor:
    """Sum ``t`` over the processes, in place; returns ``t``."""
    if dist.world > 1:
        import torch.distributed as td

        td.all_reduce(t)
    return t


def wrap_for_training(net: torch.nn.Module, dist: Dist, device: torch.device, compile: bool) -> Any:
    """``net`` as the training step calls it: in DDP across processes, compiled when asked."""
    forward: Any = net
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        forward = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)
    if compile:
        forward = torch.compile(forward)
    return forward
