"""Processes working together under torchrun: which one this is, how many there are, and the few
collectives polyseq needs (a barrier, sums, gathering small objects).

One process started without torchrun is a cluster of one, for which every collective returns at
once, so callers need no special case. Training uses gloo on CPUs and NCCL on GPUs; sharded
translation needs only a barrier and a gather, which gloo does wherever the model runs.
"""

from __future__ import annotations

import gc
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

# A process that dies is noticed at once (torchrun stops the others; a closed connection fails
# their collectives); the timeout only bounds the wait for one that is busy (rank 0 validating,
# a rank with a longer shard), so it is long.
TIMEOUT = timedelta(hours=6)


class ClusterError(ValueError):
    """The processes cannot work together as asked (the message says what to change)."""


@dataclass(frozen=True)
class Cluster:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0  # the rank among this machine's processes: which GPU it takes
    tensor_device: str = "cpu"  # where the tensors of collectives live (the GPU under NCCL)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def __str__(self) -> str:
        return f"process {self.rank} of {self.world_size}"

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum(self, values: Sequence[float]) -> list[float]:
        """Each value summed over the processes (float64, so token counts stay exact)."""
        if not self.distributed:
            return [float(value) for value in values]
        tensor = torch.tensor(values, dtype=torch.float64, device=self.tensor_device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def sum_tensors(self, tensors: Sequence[torch.Tensor]) -> None:
        """Each tensor (on the collectives' device) summed over the processes, in place."""
        if self.distributed:
            for tensor in tensors:
                dist.all_reduce(tensor)

    def gather(self, value: Any) -> list[Any]:
        """Every process's `value` (picklable), in rank order, on every process."""
        if not self.distributed:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values


def cluster_from_environment() -> Cluster:
    """The cluster torchrun describes in RANK, WORLD_SIZE and LOCAL_RANK, or one process."""
    names = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    found = {name: os.environ.get(name) for name in names}
    if found["WORLD_SIZE"] is None:
        return Cluster()
    try:
        rank, world, local = (int(found[name] or 0) for name in names)
    except ValueError:
        raise ClusterError(f"torchrun's environment is not understood: {found}") from None
    if not 0 <= rank < world:
        raise ClusterError(f"RANK={rank} is outside WORLD_SIZE={world}")
    return Cluster(rank, world, local)


def process_device(name: str, cluster: Cluster) -> str:
    """The device of this process: with torchrun, `cuda` means the GPU of its local rank."""
    if not cluster.distributed or not name.startswith("cuda"):
        return name
    if name != "cuda":
        raise ClusterError(f"device {name!r} names one GPU, but torchrun started {cluster.world_size} "
                           "processes: give device 'cuda', and each process takes the GPU of its "
                           "local rank")
    return f"cuda:{cluster.local_rank}"


@contextmanager
def connected(cluster: Cluster, device: torch.device | None = None) -> Iterator[Cluster]:
    """`cluster` with its process group up (NCCL for a GPU `device`, else gloo); one that is
    already up (an outer command made it) is used as it is, and left up."""
    if not cluster.distributed:
        yield cluster
        return
    if dist.is_initialized():
        on_gpu = dist.get_backend() == "nccl" and device is not None
        yield replace(cluster, tensor_device=str(device) if on_gpu else "cpu")
        return
    nccl = device is not None and device.type == "cuda"
    if nccl:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if nccl else "gloo", timeout=TIMEOUT,
                            device_id=device if nccl else None)
    try:
        yield replace(cluster, tensor_device=str(device) if nccl else "cpu")
    finally:
        # what still holds the group (a DDP or FSDP model) goes first: freed after the group,
        # it can wait forever for the other processes, or abort this one as it exits
        _release_frames(sys.exc_info()[1])
        gc.collect()
        dist.destroy_process_group()


def _release_frames(error: BaseException | None) -> None:
    """Clear the locals of the frames that an exception on its way out (a stop by signal, a lost
    process) and its causes passed through: they hold the trainer, and its model the group."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        traceback.clear_frames(error.__traceback__)
        error = error.__cause__ or error.__context__
