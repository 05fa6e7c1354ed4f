"""How a run spreads over processes (the loop itself is train/loop.py): which of a step's batches
each process trains on, and how the model is held.

Every process holds the same seeded BatchStream. A step's global batch is the stream's next
world_size x accumulate batches; the process of rank r trains on those at positions r, r + world,
r + 2 world, ... and steps over the others without building them. The loss is divided by the
global batch's target tokens and gradients are *summed* over processes, so N processes compute
exactly what one process computes with accumulate x N on the same batches.

The model is held in one of three ways:
  - `Replicas`: one process, the model itself;
  - `DataParallel`: DistributedDataParallel, a full replica per process;
  - `Sharded`: FSDP2 (`fully_shard`, train.fsdp), parameters, gradients and optimizer state
    split over the processes, for models that do not fit on one device.
Checkpoints hold full (gathered) weights and optimizer state either way; the optimizer state of a
sharded run is keyed by parameter name, so a run resumes in the layout it was trained in.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from polyseq.cluster import Cluster
from polyseq.data.batching import Batch, BatchStream
from polyseq.model.transformer import Seq2Seq


def take_share(stream: BatchStream, cluster: Cluster, accumulate: int) -> list[Batch]:
    """This process's batches of the next global batch (see the module's docstring)."""
    share = []
    for position in range(cluster.world_size * accumulate):
        if position % cluster.world_size == cluster.rank:
            share.append(next(stream))
        else:
            stream.skip()
    return share


class Replicas:
    """One process: the model trains as it is. The interface of the other layouts."""

    layout = "replicated"  # what the optimizer state in a checkpoint is keyed by: parameter index

    def __init__(self, model: Seq2Seq, cluster: Cluster):
        self.model, self.cluster = model, cluster
        self.module: nn.Module = model  # what forward and backward go through

    def accumulating(self, last: bool) -> AbstractContextManager[Any]:
        """Around the forward and backward of one batch of a step; `last` is the step's last."""
        return nullcontext()

    def full_model(self) -> Seq2Seq | None:
        """The whole model on the main process (None on the others), to validate and save."""
        return self.model if self.cluster.is_main else None

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
        return optimizer.state_dict() if self.cluster.is_main else None

    def load(self, weights: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
             optimizer_state: dict[str, Any]) -> None:
        """Full weights and optimizer state, as a checkpoint holds them, on every process."""
        self.model.load_state_dict(weights)
        optimizer.load_state_dict(optimizer_state)


class DataParallel(Replicas):
    """A replica per process; DDP sums the gradients of the step's last batch across processes."""

    def __init__(self, model: Seq2Seq, cluster: Cluster):
        super().__init__(model, cluster)
        device = next(model.parameters()).device
        # the position table is a constant buffer: nothing to send before each forward
        ddp = nn.parallel.DistributedDataParallel(
            model, device_ids=[device] if device.type == "cuda" else None, forward_sync_buffers=False)
        ddp.register_comm_hook(None, _sum_gradients)
        self.module = ddp

    def accumulating(self, last: bool) -> AbstractContextManager[Any]:
        # batches before the last add to the local gradients; the last one's backward all-reduces
        return nullcontext() if last else self.module.no_sync()  # type: ignore[operator]


def _sum_gradients(state, bucket):  # type: ignore[no-untyped-def]
    """DDP's communication hook: the sum over processes (DDP's own hook averages). Unannotated:
    DDP checks the annotation against dist.GradBucket, which a postponed annotation is not."""
    work = dist.all_reduce(bucket.buffer(), async_op=True)
    return work.get_future().then(lambda future: future.value()[0])  # type: ignore[union-attr]


def replicate(model: Seq2Seq, cluster: Cluster, fsdp: bool) -> Replicas:
    """`model` laid out for `cluster`: before the optimizer is made, since FSDP replaces the
    parameters with shards."""
    if fsdp:
        from polyseq.train.sharded import Sharded

        return Sharded(model, cluster)
    return DataParallel(model, cluster) if cluster.distributed else Replicas(model, cluster)
