"""The training loop: explicit, no framework.

AdamW with inverse-square-root warm-up, label smoothing, gradient clipping and accumulation,
validation loss and BLEU/chrF every N steps (per direction), the best and the last checkpoint, a
JSONL metrics log (with the examples drawn per direction) and PNG plots. `resume=True` restores
model, optimizer, RNG and data-stream state from `last/`, so a killed run continues as if it had
never stopped: last/ is written every `save_every` steps or `save_every_minutes` and at every
evaluation, always between two steps, and SIGINT or SIGTERM finish the step in progress and save
before stopping. Under torchrun the processes train together (train/distributed.py); the main
process alone validates and writes.

Output directory layout:
  tokenizer/tokenizer.model   experiment.json   metrics.jsonl   training.png
  directions.png   validation BLEU and the examples drawn per direction (more than one direction)
  last/   model directory + trainer.pt (optimizer, RNG, data position, counters, the
          objectives' own parameters)
  best/   model directory with the best validation BLEU
  snapshots/  weights of the last `average_last` evaluations; averaged/ their mean (a model directory)
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tqdm import tqdm

from polyseq.cluster import Cluster, cluster_from_environment, connected, process_device
from polyseq.config import FREEZABLE, Actions, ExperimentConfig, replace
from polyseq.data.batching import collate
from polyseq.data.sampling import DirectionBatchStream
from polyseq.decoding import generate
from polyseq.decoding.core import DecodeInput
from polyseq.devices import usable_device
from polyseq.evaluate import plot_training, score_translations
from polyseq.evaluate.directions import direction_table, plot_directions
from polyseq.files import write_atomic, write_json_atomic
from polyseq.model.actions import build_model
from polyseq.model.checkpoint import (
    average_weights,
    recover_directory,
    save_model_files,
    write_directory_atomic,
)
from polyseq.model.transformer import Seq2Seq
from polyseq.text.tokenizer import Tokenizer
from polyseq.train.action_targets import with_action_targets
from polyseq.train.data import PreparedData, ValidSet, prepare_data
from polyseq.train.distributed import (
    before_the_group,
    lost_contact,
    replicate,
    resume_changes,
    take_share,
)
from polyseq.train.initial import initial_weights, share_tokenizer, with_imported_architecture
from polyseq.train.objectives import (
    Objectives,
    StepContext,
    build_objectives,
    label_smoothed_nll,
    tokenizer_texts,
)
from polyseq.train.schedule import learning_rate
from polyseq.train.signals import StopSignals, TrainingStopped

TRAINER_STATE = "trainer.pt"


class TrainingError(RuntimeError):
    """The run cannot start or continue as asked (the message says what to do)."""


@dataclass
class Counters:
    step: int = 0
    tokens: int = 0  # target tokens trained on
    seconds: float = 0.0  # training time, evaluation excluded
    best_bleu: float = -1.0  # best/'s validation BLEU
    best_metric: str = ""  # train.best_metric, as best_value measures it ("": no evaluation yet)
    best_value: float = 0.0
    evaluations_since_best: int = 0  # for train.patience


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path
    best_dir: Path
    last_dir: Path
    steps: int
    best_bleu: float
    plot: Path | None


class Trainer:
    def __init__(self, config: ExperimentConfig, data: PreparedData, output_dir: Path, device: torch.device,
                 cluster: Cluster | None = None, objectives: Objectives | None = None):
        self.config, self.data, self.output_dir, self.device = config, data, output_dir, device
        self.cluster = cluster or Cluster()
        tokenizer = data.tokenizer
        # an imported model's settings are its own (see _train); polyseq's tokenizer sizes a new model
        model_config = config.model if data.architecture else replace(
            config.model, vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id,
            skip_id=data.own_tokenizer().bos_id)
        torch.manual_seed(config.train.seed)  # seeds every device's generator
        self.model = build_model(model_config)
        if config.train.init_from:  # weights only: the optimizer and the data start afresh
            self.model.load_state_dict(initial_weights(Path(config.train.init_from), self.model))
        freeze(self.model, config.train.freeze)
        self.model.to(self.device)
        # before the optimizer is made: FSDP replaces the parameters with shards
        self.replicas = replicate(self.model, self.cluster, config.train.fsdp)
        if self.cluster.rank:  # the same initial model everywhere, but dropout draws of its own
            torch.manual_seed(config.train.seed * 65_536 + self.cluster.rank)
        self.objectives = objectives or build_objectives(config, tokenizer, data.pairs, log=_quiet)
        self.heads = self.objectives.heads().to(self.device)  # the objectives' own parameters
        self.optimizer = torch.optim.AdamW(
            self._parameter_groups(), lr=config.train.lr, betas=config.train.betas,
        )
        self.stream = DirectionBatchStream(data.train, data.train_directions, config.data.temperature,
                                           config.data.max_tokens, tokenizer.pad_id, seed=config.train.seed)
        self.counters = Counters()
        self.metrics_path = output_dir / "metrics.jsonl"
        self.saved = (-1, time.monotonic())  # the step last/ holds, and when it was written

    def _parameter_groups(self) -> list[dict[str, Any]]:
        decay: list[torch.nn.Parameter] = []
        no_decay: list[torch.nn.Parameter] = []
        for name, parameter in chain(self.model.named_parameters(), self.heads.named_parameters("heads")):
            if parameter.requires_grad:  # train.freeze's parts have no optimizer state
                (no_decay if parameter.ndim < 2 or "embed" in name else decay).append(parameter)
        return [{"params": decay, "weight_decay": self.config.train.weight_decay},
                {"params": no_decay, "weight_decay": 0.0}]

    # -- one optimizer step --------------------------------------------------------------------
    def train_step(self) -> dict[str, Any]:
        train = self.config.train
        self.model.train()
        lr = learning_rate(train.schedule, self.counters.step + 1, peak_lr=train.lr,
                           warmup_steps=train.warmup_steps, total_steps=train.steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batches = [batch.to(self.device) for batch in take_share(self.stream, self.cluster, train.accumulate)]
        done = self.objectives.step(
            batches, lambda stream: take_share(stream, self.cluster, train.accumulate),
            StepContext(train.seed, self.counters.step, self.cluster.rank, self.cluster.world_size),
            module=self.replicas.module, model=self.model, sum_all=self.cluster.sum,
            accumulating=lambda last: self.replicas.accumulating(last=last),
            autocast=lambda: torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=train.amp))
        heads = list(self.heads.parameters())  # none under FSDP, whose runs train translation alone
        # DDP sums the model's gradients; the heads' are summed here, likewise
        self.cluster.sum_tensors([parameter.grad for parameter in heads if parameter.grad is not None])
        # clip_norm 0 clips nothing (a limit of 0 would zero every gradient); the norm is measured either way
        grad_norm = torch.nn.utils.clip_grad_norm_([*self.model.parameters(), *heads],
                                                   train.clip_norm or math.inf)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.counters.step += 1
        self.counters.tokens += done.tokens
        norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm  # FSDP: a DTensor
        return {"loss": done.loss, "lr": lr, "grad_norm": float(norm), "tokens": done.tokens,
                "objectives": done.metrics}

    # -- evaluation -----------------------------------------------------------------------------
    @torch.inference_mode()
    def validate(self, model: Seq2Seq | None = None) -> dict[str, Any]:
        """Validation loss and BLEU/chrF of `model` (this trainer's by default), in one process."""
        model = self.model if model is None else model
        model.eval()
        loss_sum, tokens = 0.0, 0
        results: dict[str, Any] = {}
        for valid in self.data.valid:
            for start in range(0, len(valid.examples), 64):
                chunk = valid.examples[start : start + 64]
                batch = collate(chunk, self.data.tokenizer.pad_id).to(self.device)
                logits = model(batch.src, batch.tgt_in)
                _, nll, count = label_smoothed_nll(logits, batch.tgt_out, smoothing=0.0,
                                                   pad_id=self.data.tokenizer.pad_id)
                loss_sum, tokens = loss_sum + float(nll), tokens + count
            results[f"{valid.direction[0]}-{valid.direction[1]}"] = self._bleu(valid, model)
        count = max(len(results), 1)
        bleu, chrf = (sum(r[key] for r in results.values()) / count for key in ("bleu", "chrf"))
        return {"valid_loss": loss_sum / max(tokens, 1), "bleu": bleu, "chrf": chrf, "directions": results}

    def _bleu(self, valid: ValidSet, model: Seq2Seq) -> dict[str, float]:
        count = self.config.train.eval_bleu_sentences
        pairs, examples = valid.pairs[:count], valid.examples[:count]
        tokenizer, hypotheses = self.data.tokenizer, []
        for start in range(0, len(examples), 64):
            chunk = examples[start : start + 64]
            batch = collate(chunk, tokenizer.pad_id).to(self.device)
            prefix = batch.tgt_in[:, :valid.prefix_length]  # the target-language tag (and start)
            inputs = DecodeInput(batch.src, prefix, eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)
            result = generate(model, inputs, "greedy")
            hypotheses += [tokenizer.decode(list(h.tokens)) for h in result.best()]
        scores = score_translations(hypotheses, [[pair.tgt for pair in pairs]], valid.direction[1])
        return {"bleu": scores.bleu, "chrf": scores.chrf}

    # -- checkpoints ----------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        return {**self.data.inherited, **self.data.summary,  # an imported model's metadata carries on
                "steps": self.counters.step, "tokens": self.counters.tokens,
                "best_valid_bleu": self.counters.best_bleu, "best_metric": self.counters.best_metric,
                "best_value": self.counters.best_value, "model": self.config.preset or "custom",
                "parameters": self.model.parameter_count()}

    def _fill_model_dir(self, directory: Path, model: Seq2Seq, **extra: Any) -> None:
        save_model_files(directory, model, {**self.metadata(), **extra})
        if isinstance(self.data.tokenizer, Tokenizer):
            self.data.tokenizer.save(directory)
        for name in self.data.inherited.get("hf_files", []):  # an imported model's tokenizer files
            shutil.copyfile(self.output_dir / "tokenizer" / name, directory / name)
        if self.data.vocabularies is not None:
            self.data.vocabularies.save(directory)

    def save_best(self, model: Seq2Seq | None = None) -> None:
        model = self.model if model is None else model
        write_directory_atomic(self.output_dir / "best", lambda folder: self._fill_model_dir(folder, model))

    def save_last(self) -> None:
        """Write last/: model, optimizer, every process's RNG, data position and counters, all as
        they are between two steps. Every process takes part; the main one writes."""
        model = self.replicas.full_model()
        optimizer = self.replicas.optimizer_state(self.optimizer)
        rngs = self.cluster.gather((torch.get_rng_state(), self._device_rng()))
        self.saved = (self.counters.step, time.monotonic())
        if model is None:
            return

        def fill(directory: Path) -> None:
            self._fill_model_dir(directory, model)
            torch.save({
                "optimizer": optimizer, "layout": self.replicas.layout,
                "rng": [cpu for cpu, _ in rngs], "device_rng": [device for _, device in rngs],
                "world_size": self.cluster.world_size, "accumulate": self.config.train.accumulate,
                "stream": self.stream.state(), "objectives": self.objectives.state(),
                "heads": self.heads.state_dict(),
                "counters": asdict(self.counters),
                "experiment": self.config.to_dict(),
            }, directory / TRAINER_STATE)

        started = time.perf_counter()
        write_directory_atomic(self.output_dir / "last", fill)
        self.log({"kind": "checkpoint", "step": self.counters.step,
                  "seconds": round(time.perf_counter() - started, 3)})

    def load_last(self) -> list[str]:
        """Continue from last/; returns what changes from the run that wrote it (a message each)."""
        from polyseq.model.checkpoint import load_model

        last = self.output_dir / "last"
        if not (last / TRAINER_STATE).is_file():
            raise TrainingError(f"cannot resume: {last / TRAINER_STATE} does not exist")
        state = torch.load(last / TRAINER_STATE, weights_only=True, map_location="cpu")
        self._check_same_experiment(state["experiment"])
        layout = state.get("layout", "replicated")
        if layout != self.replicas.layout:
            raise TrainingError(f"cannot resume: {last} was written by a run with train.fsdp="
                                f"{str(layout == 'sharded').lower()}; resume with the same setting")
        heads = state.get("heads", {})
        if heads.keys() != self.heads.state_dict().keys():
            raise TrainingError(f"cannot resume: {last} holds no projection head of the objectives "
                                f"{', '.join(self.heads) or 'none'} (it was written by an older polyseq, "
                                f"whose claps had none); start the run afresh")
        self.heads.load_state_dict(heads)
        self.replicas.load(load_model(last).state_dict(), self.optimizer, state["optimizer"])
        self._load_rng(state["rng"], state.get("device_rng"))
        self.stream.load_state(state["stream"])
        self.objectives.load_state(state.get("objectives", {}))
        self.counters = Counters(**state["counters"])
        self.saved = (self.counters.step, time.monotonic())
        if self.cluster.is_main:
            self._forget_metrics_after(self.counters.step)
        was = (state.get("world_size", 1), state.get("accumulate", self.config.train.accumulate))
        return resume_changes(was, (self.cluster.world_size, self.config.train.accumulate),
                              self.counters.step)

    def _check_same_experiment(self, saved: dict[str, Any]) -> None:
        current = self.config.to_dict()
        defaults = ExperimentConfig().to_dict()  # a setting added since the run began is at these
        objectives = saved["train"].get("objectives", defaults["train"]["objectives"])
        # in order too: an objective's data stream is seeded by its place in the table
        if list(objectives.items()) != list(current["train"]["objectives"].items()):
            listed = ", ".join(f"{name} = {weight:g}" for name, weight in objectives.items())
            raise TrainingError(f"cannot resume: train.objectives differ from those of the run in "
                                f"{self.output_dir} ({{{listed}}}); resume with the same objectives, "
                                f"in the same order")
        was_frozen = tuple(saved["train"].get("freeze", ()))  # what the optimizer's state covers
        if was_frozen != tuple(current["train"]["freeze"]):
            raise TrainingError(f"cannot resume: train.freeze differs from the run's in {self.output_dir} "
                                f"({', '.join(was_frozen) or 'nothing'} frozen there); resume with the same")
        for section in ("model", "data", "objectives"):
            was = {**defaults[section], **saved.get(section, {})}
            changed = sorted(key for key in was.keys() | current[section].keys()
                             if was.get(key) != current[section].get(key))
            if changed:
                raise TrainingError(
                    f"cannot resume: the [{section}] settings {', '.join(changed)} differ from "
                    f"those of the run in {self.output_dir}; resume with the same configuration"
                )

    def _load_rng(self, cpu: Any, device: Any) -> None:
        """This process's generators as saved; a process the run did not have keeps its seed."""
        cpu = cpu if isinstance(cpu, list) else [cpu]  # written by one process before lists
        device = device if isinstance(device, list) else [device]
        if self.cluster.rank < len(cpu):
            torch.set_rng_state(cpu[self.cluster.rank])
        mine = device[self.cluster.rank] if self.cluster.rank < len(device) else None
        if mine is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(mine, self.device)  # dropout draws from it

    def _device_rng(self) -> torch.Tensor | None:
        return torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None

    def _forget_metrics_after(self, step: int) -> None:
        """Drop log records a killed run wrote after its last checkpoint (they are redone), and a
        last line it was killed while writing."""
        if self.metrics_path.is_file():
            kept = []
            for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
                try:
                    if json.loads(line)["step"] <= step:
                        kept.append(line)
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue
            # atomically: a resume stopped here (a kill, a full disk) leaves the whole log, not a part
            write_atomic(self.metrics_path, "".join(line + "\n" for line in kept))

    def log(self, record: dict[str, Any]) -> None:
        if self.cluster.is_main:
            with self.metrics_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        train = self.config.train
        budget = train.time_budget_minutes * 60 or math.inf
        # the bar is for a terminal; logs and CI get the periodic metrics lines instead
        show_bar = train.progress and sys.stderr.isatty() and self.cluster.is_main
        bar = tqdm(total=train.steps, initial=self.counters.step, disable=not show_bar,
                   desc="train", dynamic_ncols=True)
        window, stopped = _Window(), False
        with StopSignals() as signals:
            while self.counters.step < train.steps:
                stopped, save_due, out_of_patience, seconds = self._agree(signals.requested is not None)
                if out_of_patience:  # checked before each step: a resumed run that had stopped stays so
                    tqdm.write(f"step {self.counters.step}: no better {train.best_metric} in "
                               f"{train.patience} evaluations (train.patience): stopping early")
                if stopped or seconds >= budget or out_of_patience:
                    break
                if save_due:
                    self.save_last()
                started = time.perf_counter()
                record = self.train_step()
                self.counters.seconds += time.perf_counter() - started
                bar.update(1)
                window.add(record)
                if self.counters.step % train.log_every == 0:
                    self._log_progress(record, window, bar, show_bar)
                if self.counters.step % train.eval_every == 0:
                    self.evaluate_and_save()
                    window.start = time.perf_counter()
                elif train.save_every and self.counters.step % train.save_every == 0:
                    self.save_last()
            bar.close()
            # still under the handlers: the SIGTERM torchrun sends just after a Ctrl-C (the same
            # request) must not cut the last write short
            if stopped:  # every process stops here together, whichever had the signal
                if self.saved[0] != self.counters.step:
                    self.save_last()
                raise TrainingStopped(f"stopped by {signals.requested or 'a signal'} after step "
                                      f"{self.counters.step}; {self.output_dir / 'last'} holds it: "
                                      f"continue with --resume")
            if self.counters.step % train.eval_every != 0:
                self.evaluate_and_save()
        plot = None
        if self.cluster.is_main:
            plot = plot_training(self.metrics_path, self.output_dir / "training.png")
            plot_directions(self.metrics_path, self.output_dir / "directions.png")
        self.counters.best_bleu = self.cluster.gather(self.counters.best_bleu)[0]  # known to the main one
        return TrainResult(self.output_dir, self.output_dir / "best", self.output_dir / "last",
                           self.counters.step, self.counters.best_bleu, plot)

    def _agree(self, stop_requested: bool) -> tuple[bool, bool, bool, float]:
        """What every process does next, decided together: stop (any of them had a signal), save
        now (the main one's timer says so), stop early (train.patience evaluations in a row have
        not bettered the best BLEU, which the main one validates), and the run's training time
        (their mean)."""
        train = self.config.train
        due = (self.cluster.is_main and train.save_every_minutes > 0
               and time.monotonic() - self.saved[1] >= train.save_every_minutes * 60)
        waited = (self.cluster.is_main and train.patience > 0
                  and self.counters.evaluations_since_best >= train.patience)
        stop, save, early, seconds = self.cluster.sum([stop_requested, due, waited, self.counters.seconds])
        return stop > 0, save > 0, early > 0, seconds / self.cluster.world_size

    def _log_progress(self, record: dict[str, Any], window: _Window, bar: tqdm, show_bar: bool) -> None:
        speed = window.tokens / max(time.perf_counter() - window.start, 1e-9)
        entry = {"kind": "train", "step": self.counters.step, "loss": sum(window.losses) / len(window.losses),
                 "lr": record["lr"], "grad_norm": round(sum(window.grad_norms) / len(window.grad_norms), 4),
                 "tokens_per_s": round(speed, 1),
                 "elapsed_s": round(self.counters.seconds, 1), "drawn": self.stream.drawn()}
        if self.objectives.names != ["translation"]:
            entry["objectives"] = window.objective_means()
        self.log(entry)
        bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.2e}", tok_s=f"{speed:.0f}")
        if self.config.train.progress and not show_bar and self.cluster.is_main:
            tqdm.write(f"step {self.counters.step}: loss {record['loss']:.3f}, "
                       f"lr {record['lr']:.2e}, {speed:.0f} tokens/s", file=sys.stderr)
        window.reset()

    def evaluate_and_save(self) -> None:
        """Validate and write best/ and snapshots on the main process, then last/: a run killed
        before last/ is written redoes this evaluation, so best/ and snapshots stay in step."""
        model = self.replicas.full_model()  # gathered from the shards under FSDP
        if model is not None:
            results = self.validate(model)
            improved = self._improves(results)
            if improved:
                metric = self.config.train.best_metric
                self.counters.best_bleu = results["bleu"]
                self.counters.best_metric, self.counters.best_value = metric, results[metric]
            self.counters.evaluations_since_best = 0 if improved else self.counters.evaluations_since_best + 1
            self.log({"kind": "valid", "step": self.counters.step, **results})
            tqdm.write(f"step {self.counters.step}: valid loss {results['valid_loss']:.3f}, "
                       f"BLEU {results['bleu']:.2f}" + (" (best)" if improved else ""))
            if improved:
                self.save_best(model)
            if self.config.train.average_last:
                self.save_snapshot(model)
        self.save_last()

    def _improves(self, results: dict[str, Any]) -> bool:
        """Whether `results` better the best so far by train.best_metric. A run resumed with
        another metric starts its best afresh; one saved before best_metric existed chose by BLEU."""
        metric, counters = self.config.train.best_metric, self.counters
        if not counters.best_metric and counters.best_bleu >= 0:
            counters.best_metric, counters.best_value = "bleu", counters.best_bleu
        if counters.best_metric != metric:
            return True
        value = results[metric]
        return bool(value < counters.best_value if metric == "valid_loss" else value > counters.best_value)

    def save_snapshot(self, model: Seq2Seq) -> None:
        """Keep this evaluation's weights among the last N and write their average."""
        snapshots = self.output_dir / "snapshots"
        snapshots.mkdir(exist_ok=True)
        weights = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
        path = snapshots / f"step-{self.counters.step:08d}.safetensors"
        save_file(weights, str(path.with_suffix(".tmp")))
        path.with_suffix(".tmp").replace(path)
        kept = sorted(snapshots.glob("step-*.safetensors"))
        for old in kept[: -self.config.train.average_last]:
            old.unlink()
        kept = kept[-self.config.train.average_last :]
        averaged = average_weights(kept)

        mean = build_model(self.model.config)
        mean.load_state_dict(averaged)
        write_directory_atomic(self.output_dir / "averaged",
                               lambda directory: self._fill_model_dir(directory, mean, averaged=len(kept)))


def train(config: ExperimentConfig, *, resume: bool = False, log: Any = print,
          cluster: Cluster | None = None) -> TrainResult:
    """Train as configured; with `resume`, continue the run in `config.train.output_dir`. Under
    torchrun (or given a `cluster`) the processes train together, and only the main one logs."""
    cluster = cluster or cluster_from_environment()
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    if config.train.fsdp and not cluster.distributed:
        raise TrainingError("train.fsdp shards the model over processes: start the run with "
                            "torchrun --nproc-per-node N (N >= 2), or leave train.fsdp off")
    # before the data, whose preparation takes a while
    device = usable_device(process_device(config.train.device, cluster))
    if cluster.distributed:
        before_the_group()
    with connected(cluster, device) as cluster:
        # the trainer lives in _train alone: it is gone before the process group goes
        return _train(config, resume, log if cluster.is_main else _quiet, cluster, device)


def _train(config: ExperimentConfig, resume: bool, log: Any, cluster: Cluster,
           device: torch.device) -> TrainResult:
    output_dir = Path(config.train.output_dir)
    data = _prepare(config, resume, cluster, log) if cluster.is_main else None
    cluster.barrier()  # the tokenizer is written: the other processes read it, not race to write it
    data = data or _prepare(config, resume, cluster, log)
    config = with_imported_architecture(config, data.architecture)
    if resume:  # last/ holds the weights and tokenizer/ the vocabulary: init_from is not read again
        config = replace(config, train=replace(config.train, init_from=""))
    objectives = build_objectives(config, data.tokenizer, data.pairs, log)
    trainer = Trainer(config, data, output_dir, device, cluster, objectives)
    if resume:
        for change in trainer.load_last():
            log(f"note: {change}")
        log(f"resumed {output_dir} at step {trainer.counters.step}")
    elif cluster.is_main:
        write_json_atomic(output_dir / "experiment.json", config.to_dict())
        trainer.metrics_path.unlink(missing_ok=True)
    processes = f" in {cluster.world_size} processes" if cluster.distributed else ""
    log(f"model: {trainer.model.parameter_count():,} parameters; "
        f"{len(data.train):,} training examples{processes}")
    try:
        result = trainer.run()
    except RuntimeError as error:
        if not (cluster.distributed and lost_contact(error)):
            raise
        saved = f"step {trainer.saved[0]}" if trainer.saved[0] >= 0 else "none yet"
        raise TrainingError(
            f"{cluster} lost contact with the others ({str(error).splitlines()[0][:200]}): one of "
            f"them stopped or failed, see its message; the last checkpoint, {output_dir / 'last'} "
            f"({saved}), is intact: continue with --resume"
        ) from error
    if len(data.valid) > 1:
        log(f"validation per direction:\n{direction_table(trainer.metrics_path)}")
    return result


def _prepare(config: ExperimentConfig, resume: bool, cluster: Cluster, log: Any) -> PreparedData:
    """Check the output folder (the main process first tidies what a killed write left there),
    then load the data; the main process trains the tokenizer when the run has none yet."""
    output_dir = Path(config.train.output_dir)
    if cluster.is_main:
        for name in ("last", "best", "averaged"):
            recover_directory(output_dir / name)
    if resume and not (output_dir / "last").is_dir():
        raise TrainingError(f"cannot resume: {output_dir / 'last'} does not exist")
    if not resume and (output_dir / "last").exists():
        raise TrainingError(
            f"{output_dir} already holds a run; pass --resume to continue it, or choose another "
            f"train.output_dir"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    if config.train.init_from and not resume and cluster.is_main:  # the weights' vocabulary
        share_tokenizer(Path(config.train.init_from), output_dir / "tokenizer", config, log)
    data = prepare_data(config.data, output_dir / "tokenizer", config.train.seed, log=log,
                        extra_texts=tokenizer_texts(config))
    if config.model.actions is not Actions.NONE:  # the targets become action sequences
        data = with_action_targets(data, data.own_tokenizer().bos_id, config.data.max_length, log)
    if {name for name, weight in config.train.objectives.items() if weight > 0} == {"translation"}:
        data = replace(data, pairs=())  # only the other objectives read the text: its memory goes
    return data


def freeze(model: torch.nn.Module, parts: Sequence[str]) -> None:
    """train.freeze: the parameters of those parts keep their weights (no gradient, no optimizer
    state); with tied embeddings the output layer is the embedding matrix, frozen with it."""
    for part in parts:
        for attribute in FREEZABLE[part]:
            module = getattr(model, attribute, None)
            if module is not None:
                module.requires_grad_(False)


def _quiet(message: str) -> None:
    """The log of processes other than the main one: it speaks for them all."""


@dataclass
class _Window:
    """Training records since the last progress line."""

    tokens: int = 0
    start: float = field(default_factory=time.perf_counter)
    losses: list[float] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)  # before clipping
    objectives: list[dict[str, dict[str, float]]] = field(default_factory=list)

    def add(self, record: dict[str, Any]) -> None:
        self.tokens += int(record["tokens"])
        self.losses.append(record["loss"])
        self.grad_norms.append(record["grad_norm"])
        self.objectives.append(record["objectives"])

    def objective_means(self) -> dict[str, dict[str, float]]:
        """Each objective's metrics averaged over the window's steps."""
        first = self.objectives[0]
        return {name: {key: round(sum(step[name][key] for step in self.objectives) / len(self.objectives), 4)
                       for key in first[name]} for name in first}

    def reset(self) -> None:
        self.tokens, self.start = 0, time.perf_counter()
        self.losses, self.grad_norms, self.objectives = [], [], []
