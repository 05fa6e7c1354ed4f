"""The training loop: explicit, no framework.

AdamW with inverse-square-root warm-up, label smoothing, gradient clipping and accumulation,
validation loss and BLEU/chrF every N steps (per direction), the best and the last checkpoint, a
JSONL metrics log (with the examples drawn per direction) and PNG plots. `resume=True` restores
model, optimizer, RNG and data-stream state from `last/`, so a killed run continues as if it had
never stopped.

Output directory layout:
  tokenizer/tokenizer.model   experiment.json   metrics.jsonl   training.png
  directions.png   validation BLEU and the examples drawn per direction (more than one direction)
  last/   model directory + trainer.pt (optimizer, RNG, data position, counters)
  best/   model directory with the best validation BLEU
  snapshots/  weights of the last `average_last` evaluations; averaged/ their mean (a model directory)
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tqdm import tqdm

from polyseq.config import Actions, ExperimentConfig, replace
from polyseq.data.batching import collate
from polyseq.data.sampling import DirectionBatchStream
from polyseq.decoding import generate
from polyseq.decoding.core import DecodeInput
from polyseq.devices import usable_device
from polyseq.evaluate import plot_training, score_translations
from polyseq.evaluate.directions import direction_table, plot_directions
from polyseq.files import write_json_atomic
from polyseq.model.actions import build_model
from polyseq.model.checkpoint import average_weights, save_model_files, write_directory_atomic
from polyseq.train.action_targets import with_action_targets
from polyseq.train.data import PreparedData, ValidSet, prepare_data
from polyseq.train.objectives import label_smoothed_nll
from polyseq.train.schedule import inverse_sqrt

TRAINER_STATE = "trainer.pt"


class TrainingError(RuntimeError):
    """The run cannot start or continue as asked (the message says what to do)."""


@dataclass
class Counters:
    step: int = 0
    tokens: int = 0  # target tokens trained on
    seconds: float = 0.0  # training time, evaluation excluded
    best_bleu: float = -1.0


@dataclass(frozen=True)
class TrainResult:
    output_dir: Path
    best_dir: Path
    last_dir: Path
    steps: int
    best_bleu: float
    plot: Path | None


class Trainer:
    def __init__(self, config: ExperimentConfig, data: PreparedData, output_dir: Path, device: torch.device):
        self.config, self.data, self.output_dir, self.device = config, data, output_dir, device
        tokenizer = data.tokenizer
        model_config = replace(config.model, vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id,
                               skip_id=tokenizer.bos_id)
        torch.manual_seed(config.train.seed)  # seeds every device's generator
        self.model = build_model(model_config).to(self.device)
        self.optimizer = torch.optim.AdamW(
            self._parameter_groups(), lr=config.train.lr, betas=config.train.betas,
        )
        self.stream = DirectionBatchStream(data.train, data.train_directions, config.data.temperature,
                                           config.data.max_tokens, tokenizer.pad_id, seed=config.train.seed)
        self.counters = Counters()
        self.metrics_path = output_dir / "metrics.jsonl"

    def _parameter_groups(self) -> list[dict[str, Any]]:
        decay: list[torch.nn.Parameter] = []
        no_decay: list[torch.nn.Parameter] = []
        for name, parameter in self.model.named_parameters():
            (no_decay if parameter.ndim < 2 or "embed" in name else decay).append(parameter)
        return [{"params": decay, "weight_decay": self.config.train.weight_decay},
                {"params": no_decay, "weight_decay": 0.0}]

    # -- one optimizer step --------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        train = self.config.train
        self.model.train()
        lr = inverse_sqrt(self.counters.step + 1, peak_lr=train.lr, warmup_steps=train.warmup_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batches = [next(self.stream).to(self.device) for _ in range(train.accumulate)]
        total_tokens = sum(batch.tgt_tokens for batch in batches)
        loss_sum = nll_sum = 0.0
        for batch in batches:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=train.amp):
                logits = self.model(batch.src, batch.tgt_in)
            loss, nll, _ = label_smoothed_nll(logits, batch.tgt_out,
                                              smoothing=train.label_smoothing,
                                              pad_id=self.data.tokenizer.pad_id)
            (loss / total_tokens).backward()
            loss_sum += loss.item()
            nll_sum += nll.item()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), train.clip_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.counters.step += 1
        self.counters.tokens += total_tokens
        return {"loss": loss_sum / total_tokens, "nll": nll_sum / total_tokens, "lr": lr,
                "grad_norm": float(grad_norm), "tokens": total_tokens}

    # -- evaluation -----------------------------------------------------------------------------
    @torch.inference_mode()
    def validate(self) -> dict[str, Any]:
        self.model.eval()
        loss_sum, tokens = 0.0, 0
        results: dict[str, Any] = {}
        for valid in self.data.valid:
            for start in range(0, len(valid.examples), 64):
                chunk = valid.examples[start : start + 64]
                batch = collate(chunk, self.data.tokenizer.pad_id).to(self.device)
                logits = self.model(batch.src, batch.tgt_in)
                _, nll, count = label_smoothed_nll(logits, batch.tgt_out, smoothing=0.0,
                                                   pad_id=self.data.tokenizer.pad_id)
                loss_sum, tokens = loss_sum + float(nll), tokens + count
            results[f"{valid.direction[0]}-{valid.direction[1]}"] = self._bleu(valid)
        bleu = [r["bleu"] for r in results.values()]
        return {"valid_loss": loss_sum / max(tokens, 1), "bleu": sum(bleu) / max(len(bleu), 1),
                "directions": results}

    def _bleu(self, valid: ValidSet) -> dict[str, float]:
        count = self.config.train.eval_bleu_sentences
        pairs, examples = valid.pairs[:count], valid.examples[:count]
        tokenizer, hypotheses = self.data.tokenizer, []
        for start in range(0, len(examples), 64):
            chunk = examples[start : start + 64]
            batch = collate(chunk, tokenizer.pad_id).to(self.device)
            prefix = batch.tgt_in[:, :1]  # the target-language tag
            inputs = DecodeInput(batch.src, prefix, eos_id=tokenizer.eos_id, pad_id=tokenizer.pad_id)
            result = generate(self.model, inputs, "greedy")
            hypotheses += [tokenizer.decode(list(h.tokens)) for h in result.best()]
        scores = score_translations(hypotheses, [[pair.tgt for pair in pairs]])
        return {"bleu": scores.bleu, "chrf": scores.chrf}

    # -- checkpoints ----------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        return {**self.data.summary, "steps": self.counters.step, "tokens": self.counters.tokens,
                "best_valid_bleu": self.counters.best_bleu, "model": self.config.preset or "custom",
                "parameters": self.model.parameter_count()}

    def _fill_model_dir(self, directory: Path) -> None:
        save_model_files(directory, self.model, self.metadata())
        self.data.tokenizer.save(directory)
        if self.data.vocabularies is not None:
            self.data.vocabularies.save(directory)

    def save_best(self) -> None:
        write_directory_atomic(self.output_dir / "best", self._fill_model_dir)

    def save_last(self) -> None:
        def fill(directory: Path) -> None:
            self._fill_model_dir(directory)
            torch.save({
                "optimizer": self.optimizer.state_dict(), "rng": torch.get_rng_state(),
                "device_rng": self._device_rng(),
                "stream": self.stream.state(), "counters": asdict(self.counters),
                "experiment": self.config.to_dict(),
            }, directory / TRAINER_STATE)

        write_directory_atomic(self.output_dir / "last", fill)

    def load_last(self) -> None:
        from polyseq.model.checkpoint import load_model

        last = self.output_dir / "last"
        if not (last / TRAINER_STATE).is_file():
            raise TrainingError(f"cannot resume: {last / TRAINER_STATE} does not exist")
        state = torch.load(last / TRAINER_STATE, weights_only=True, map_location="cpu")
        saved, current = state["experiment"], self.config.to_dict()
        defaults = ExperimentConfig().to_dict()  # a setting added since the run began is at these
        for section in ("model", "data"):
            was = {**defaults[section], **saved[section]}
            changed = sorted(key for key in was.keys() | current[section].keys()
                             if was.get(key) != current[section].get(key))
            if changed:
                raise TrainingError(
                    f"cannot resume: the [{section}] settings {', '.join(changed)} differ from "
                    f"those of the run in {self.output_dir}; resume with the same configuration"
                )
        self.model.load_state_dict(load_model(last).state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"])
        if state.get("device_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["device_rng"], self.device)  # dropout draws from it
        self.stream.load_state(state["stream"])
        self.counters = Counters(**state["counters"])
        self._forget_metrics_after(self.counters.step)

    def _device_rng(self) -> torch.Tensor | None:
        return torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None

    def _forget_metrics_after(self, step: int) -> None:
        """Drop log records a killed run wrote after its last checkpoint: they are redone."""
        if self.metrics_path.is_file():
            lines = self.metrics_path.read_text(encoding="utf-8").splitlines()
            kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= step]
            self.metrics_path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def log(self, record: dict[str, Any]) -> None:
        with self.metrics_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        train = self.config.train
        budget = train.time_budget_minutes * 60 or math.inf
        # the bar is for a terminal; logs and CI get the periodic metrics lines instead
        show_bar = train.progress and sys.stderr.isatty()
        bar = tqdm(total=train.steps, initial=self.counters.step, disable=not show_bar,
                   desc="train", dynamic_ncols=True)
        window_tokens, window_start, losses = 0, time.perf_counter(), []
        try:
            while self.counters.step < train.steps and self.counters.seconds < budget:
                started = time.perf_counter()
                record = self.train_step()
                self.counters.seconds += time.perf_counter() - started
                window_tokens += int(record["tokens"])
                losses.append(record["loss"])
                bar.update(1)
                if self.counters.step % train.log_every == 0:
                    speed = window_tokens / max(time.perf_counter() - window_start, 1e-9)
                    self.log({"kind": "train", "step": self.counters.step, "loss": sum(losses) /
                              len(losses), "lr": record["lr"], "tokens_per_s": round(speed, 1),
                              "elapsed_s": round(self.counters.seconds, 1), "drawn": self.stream.drawn()})
                    bar.set_postfix(loss=f"{record['loss']:.3f}", lr=f"{record['lr']:.2e}",
                                    tok_s=f"{speed:.0f}")
                    if train.progress and not show_bar:
                        tqdm.write(f"step {self.counters.step}: loss {record['loss']:.3f}, "
                                   f"lr {record['lr']:.2e}, {speed:.0f} tokens/s", file=sys.stderr)
                    window_tokens, window_start, losses = 0, time.perf_counter(), []
                if self.counters.step % train.eval_every == 0:
                    self.evaluate_and_save()
                    window_start = time.perf_counter()
        except KeyboardInterrupt:
            bar.close()
            self.save_last()
            raise
        bar.close()
        if self.counters.step % train.eval_every != 0:
            self.evaluate_and_save()
        plot = plot_training(self.metrics_path, self.output_dir / "training.png")
        plot_directions(self.metrics_path, self.output_dir / "directions.png")
        return TrainResult(self.output_dir, self.output_dir / "best", self.output_dir / "last",
                           self.counters.step, self.counters.best_bleu, plot)

    def evaluate_and_save(self) -> None:
        results = self.validate()
        improved = results["bleu"] > self.counters.best_bleu
        if improved:
            self.counters.best_bleu = results["bleu"]
        self.log({"kind": "valid", "step": self.counters.step, **results})
        tqdm.write(f"step {self.counters.step}: valid loss {results['valid_loss']:.3f}, "
                   f"BLEU {results['bleu']:.2f}" + (" (best)" if improved else ""))
        if improved:
            self.save_best()
        self.save_last()
        if self.config.train.average_last:
            self.save_snapshot()

    def save_snapshot(self) -> None:
        """Keep this evaluation's weights among the last N and write their average."""
        snapshots = self.output_dir / "snapshots"
        snapshots.mkdir(exist_ok=True)
        weights = {k: v.detach().contiguous().cpu() for k, v in self.model.state_dict().items()}
        path = snapshots / f"step-{self.counters.step:08d}.safetensors"
        save_file(weights, str(path.with_suffix(".tmp")))
        path.with_suffix(".tmp").replace(path)
        kept = sorted(snapshots.glob("step-*.safetensors"))
        for old in kept[: -self.config.train.average_last]:
            old.unlink()
        kept = kept[-self.config.train.average_last :]
        averaged = average_weights(kept)

        def fill(directory: Path) -> None:
            model = build_model(self.model.config)
            model.load_state_dict(averaged)
            save_model_files(directory, model, {**self.metadata(), "averaged": len(kept)})
            self.data.tokenizer.save(directory)
            if self.data.vocabularies is not None:
                self.data.vocabularies.save(directory)

        write_directory_atomic(self.output_dir / "averaged", fill)


def train(config: ExperimentConfig, *, resume: bool = False, log: Any = print) -> TrainResult:
    """Train as configured; with `resume`, continue the run in `config.train.output_dir`."""
    output_dir = Path(config.train.output_dir)
    if config.train.threads:
        torch.set_num_threads(config.train.threads)
    if resume and not (output_dir / "last").is_dir():
        raise TrainingError(f"cannot resume: {output_dir / 'last'} does not exist")
    if not resume and (output_dir / "last").exists():
        raise TrainingError(
            f"{output_dir} already holds a run; pass --resume to continue it, or choose another "
            f"train.output_dir"
        )
    device = usable_device(config.train.device)  # before the data, whose preparation takes a while
    output_dir.mkdir(parents=True, exist_ok=True)
    data = prepare_data(config.data, output_dir / "tokenizer", config.train.seed, log=log)
    if config.model.actions is not Actions.NONE:  # the targets become action sequences
        data = with_action_targets(data, data.tokenizer.bos_id, config.data.max_length, log)
    trainer = Trainer(config, data, output_dir, device)
    if resume:
        trainer.load_last()
        log(f"resumed {output_dir} at step {trainer.counters.step}")
    else:
        write_json_atomic(output_dir / "experiment.json", config.to_dict())
        trainer.metrics_path.unlink(missing_ok=True)
    log(f"model: {trainer.model.parameter_count():,} parameters; "
        f"{len(data.train):,} training examples")
    result = trainer.run()
    if len(data.valid) > 1:
        log(f"validation per direction:\n{direction_table(trainer.metrics_path)}")
    return result
