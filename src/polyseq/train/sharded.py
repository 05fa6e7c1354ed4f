"""FSDP2 (`fully_shard`, train.fsdp): parameters, gradients and optimizer state split over the
processes, for models that do not fit on one device. Tested on CPUs with gloo and used with NCCL.

A shard group is gathered whole only while its forward and backward run: each encoder layer, each
decoder layer's feed-forward block, and the root with the embeddings and the decoder's attention
(the decoder calls its attention outside the layers' own forward, where FSDP could not gather
it). Checkpoints hold full weights and the full optimizer state (keyed by parameter name),
gathered to the main process; validation runs there on a whole copy of the model.
"""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import FSDPModule, fully_shard

from polyseq.cluster import Cluster
from polyseq.model.transformer import Seq2Seq
from polyseq.train.distributed import Replicas

GATHER = StateDictOptions(full_state_dict=True, cpu_offload=True)  # whole, on the main process's CPU
LOAD = StateDictOptions(full_state_dict=True)  # whole on every process, which keeps its shard


class Sharded(Replicas):
    layout = "sharded"  # the optimizer state is keyed by parameter name

    def __init__(self, model: Seq2Seq, cluster: Cluster):
        super().__init__(model, cluster)
        for layer in model.encoder_layers:
            fully_shard(layer)
        for layer in model.decoder_layers:
            fully_shard(layer.ffn)  # type: ignore[union-attr]
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
        weights = get_model_state_dict(self.model, options=GATHER)  # every process takes part
        if not self.cluster.is_main:
            return None
        device = next(iter(self.model.buffers())).device
        model = Seq2Seq(self.model.config).to(device)
        model.load_state_dict(weights)
        return model

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any] | None:
        state = get_optimizer_state_dict(self.model, optimizer, options=GATHER)
        return state if self.cluster.is_main else None

    def load(self, weights: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
             optimizer_state: dict[str, Any]) -> None:
        set_model_state_dict(self.model, weights, options=LOAD)
        set_optimizer_state_dict(self.model, optimizer, optimizer_state, options=LOAD)
