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
    split over the processes, for models that do not fit on one device (tested on CPUs with gloo).
    A shard group is gathered whole only while its forward and backward run: each encoder
    layer, each decoder layer's feed-forward block, and the root with the embeddings and the
    decoder's attention (the decoder calls its attention outside the layers' own forward, where
    FSDP could not gather it). Validation runs on the main process on a gathered copy.
Checkpoints hold full (gathered) weights and optimizer state either way; the optimizer state of a
sharded run is keyed by parameter name, so a run resumes in the layout it was trained in.
"""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from polyseq.cluster import Cluster
from polyseq.data.batching import Batch, BatchStream
from polyseq.model.actions import build_model
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
        self.device = next(model.parameters()).device

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
        device = self.device
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


class Sharded(Replicas):
    """FSDP2; its modules are imported here only (they take a second or two to load)."""

    layout = "sharded"  # the optimizer state is keyed by parameter name

    def __init__(self, model: Seq2Seq, cluster: Cluster):
        from torch.distributed.fsdp import FSDPModule, fully_shard

        super().__init__(model, cluster)
        for layer in model.encoder_layers:
            fully_shard(layer)
        for layer in model.decoders:
            fully_shard(layer.ffn)
        # a Linear's output on (B, T, D) is a view; Residual.output adds it out of place, as FSDP needs
        warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor")
        fully_shard(model)
        for module in model.modules():  # summed over processes, as DataParallel does
            if isinstance(module, FSDPModule):
                module.set_gradient_divide_factor(1.0)
                module.set_force_sum_reduction_for_comms(True)  # gloo has no scaled sum (PREMUL_SUM)

    def accumulating(self, last: bool) -> AbstractContextManager[Any]:
        self.model.set_requires_gradient_sync(last)  # type: ignore[operator]
        return nullcontext()

    def full_model(self) -> Seq2Seq | None:
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        weights = get_model_state_dict(self.model, options=_options(gather=True))  # all take part
        if not self.cluster.is_main:
            return None
        # a fresh model's initialisation must not move the RNG: a save at a moment that depends on
        # the clock (save_every_minutes, a signal) would change the dropout draws that follow
        with torch.random.fork_rng(devices=[]):
            model = build_model(self.model.config).to(self.device)
        model.load_state_dict(weights)
        return model

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        state = get_optimizer_state_dict(self.model, optimizer, options=_options(gather=True))
        return state if self.cluster.is_main else None

    def load(self, weights: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
             optimizer_state: dict[str, Any]) -> None:
        from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

        full: dict[str, Any] = dict(weights)
        set_model_state_dict(self.model, full, options=_options(gather=False))
        set_optimizer_state_dict(self.model, optimizer, optimizer_state, options=_options(gather=False))


def _options(gather: bool) -> Any:
    """Whole state dicts: gathered to the main process's CPU, or given whole to every process,
    which keeps its shard."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=gather)


def before_the_group() -> None:
    """Import torch._dynamo, which DDP and FSDP import, before the process group is made. Imported
    while a group is up, it keeps references to that group (PyTorch 2.13), which then outlives
    destroy_process_group: gloo's threads run on into the interpreter's shutdown, where tearing
    them down can abort the process ("terminate called without an active exception")."""
    import torch._dynamo  # noqa: F401


def replicate(model: Seq2Seq, cluster: Cluster, fsdp: bool) -> Replicas:
    """`model` laid out for `cluster`: before the optimizer is made, since FSDP replaces the
    parameters with shards."""
    if fsdp:
        return Sharded(model, cluster)
    return DataParallel(model, cluster) if cluster.distributed else Replicas(model, cluster)


def resume_changes(was: tuple[int, int], now: tuple[int, int], step: int) -> list[str]:
    """What a resume with another number of processes or accumulation changes, (processes,
    accumulate) before and now: the data stream continues where it stopped, but steps take other
    batches. A message each, to be said, never left silent."""
    if was == now:
        return []
    keep = was[0] * was[1]
    hint = f"; train.accumulate={keep // now[0]} keeps {keep} batches per step" if keep % now[0] == 0 else ""
    return [f"the run was trained by {was[0]} process(es) x accumulate {was[1]} and resumes with "
            f"{now[0]} x {now[1]}: from step {step + 1} each step takes {now[0] * now[1]} batches of "
            f"the data stream instead of {keep}, so the global batch and the batches each process "
            f"trains on change, and new processes draw dropout afresh{hint}"]


def lost_contact(error: RuntimeError) -> bool:
    """Whether a collective failed because a process is gone (gloo and NCCL say so in words)."""
    text = str(error)
    return isinstance(error, dist.DistError) or any(word in text for word in ("gloo", "NCCL", "onnection"))
