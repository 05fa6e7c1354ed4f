"""Benchmark: polyseq past one process and one sitting, on multi30k en->de.

    python bench/scale.py                                  # every part, default budgets
    python bench/scale.py --parts training,kill            # some parts; results merge into --result
    python bench/scale.py --quick --output /tmp/scale --result /tmp/scale.json   # a smoke run

Parts:
  training      target tokens/s of 2 processes x 1 thread (torchrun, gloo) against 1 process x 2
                threads and 1 x 1, the same model on the same global batches (2 batches a step),
                and the seconds a checkpoint (last/) costs;
  kill          a run killed with SIGKILL at N random points and resumed each time, against one
                that never stopped: are the weights identical?
  translation   lines/s of a corpus translated by 2 processes x 1 thread (torchrun, shards)
                against 1 x 2 and 1 x 1, and whether the outputs are identical;
  distillation  a teacher trained for --teacher-steps (or --teacher-minutes) and a student half
                its width distilled from it (beam 5, --processes processes): test2016 BLEU,
                greedy and beam 5, and greedy sentences/s at batch 1.
With --device cuda the processes use NCCL, one GPU each (the machine needs --processes GPUs).
A trained teacher and the tokenizer are reused from --output; every part's result is written as
soon as it is done.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from polyseq.config import DataConfig, ExperimentConfig, ModelConfig, TrainConfig
from polyseq.evaluate import read_metrics, score_translations, write_report
from polyseq.files import read_text_lines, write_atomic
from polyseq.train.loop import train
from polyseq.translator import Translator

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "multi30k"
PARTS = ("training", "kill", "translation", "distillation")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--monitor-interval=0.1"]


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="multi30k folder")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "work" / "scale")
    parser.add_argument("--result", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    parser.add_argument("--parts", default=",".join(PARTS), help="which parts, comma-separated")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda (NCCL, one GPU per process)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--train-seconds", type=float, default=120.0, help="training time per setting")
    parser.add_argument("--save-every", type=int, default=50, help="steps between checkpoints")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--kill-lines", type=int, default=3000, help="training pairs of the kill run")
    parser.add_argument("--kill-steps", type=int, default=400)
    parser.add_argument("--translate-lines", type=int, default=2000)
    parser.add_argument("--teacher-minutes", type=float, default=60.0)
    parser.add_argument("--student-minutes", type=float, default=30.0)
    parser.add_argument("--teacher-steps", type=int, default=0,
                        help="a budget in steps instead of --teacher-minutes (independent of the load)")
    parser.add_argument("--student-steps", type=int, default=0, help="likewise for the student")
    parser.add_argument("--distill-lines", type=int, default=0, help="training pairs distilled (0: all)")
    parser.add_argument("--speed-sentences", type=int, default=200, help="test sentences timed at batch 1")
    parser.add_argument("--quick", action="store_true", help="tiny models and budgets (a smoke run)")
    args = parser.parse_args()
    if args.quick:
        args.train_seconds, args.save_every, args.kills, args.kill_lines = 10.0, 10, 3, 600
        args.kill_steps, args.translate_lines, args.teacher_minutes = 40, 300, 0.5
        args.student_minutes, args.distill_lines, args.speed_sentences = 0.3, 1000, 30
    return args


# ------------------------------------------------------------------------------ shared pieces


def shape(args: argparse.Namespace, width: int) -> ModelConfig:
    """A 3+3 model of `width` (the teacher's 256, the student's 128), or a tiny one with --quick."""
    width = width // 4 if args.quick else width
    return ModelConfig(d_model=width, encoder_layers=3, decoder_layers=3, heads=4, ffn_dim=4 * width,
                       dropout=0.1, max_positions=128)


def corpus(args: argparse.Namespace, lines: int, name: str) -> str:
    """multi30k's training pairs, or their first `lines` in a corpus of their own."""
    if not lines:
        return str(args.data / "train")
    prefix = args.output / "data" / name
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for lang in ("en", "de"):
        text = read_text_lines(args.data / f"train.{lang}")[:lines]
        write_atomic(prefix.with_suffix(f".{lang}"), "".join(line + "\n" for line in text))
    return str(prefix)


def experiment(args: argparse.Namespace, run: Path, train_spec: str, width: int,
               **settings: Any) -> ExperimentConfig:
    data = DataConfig(train=train_spec, valid=str(args.data / "val"), languages=("en", "de"),
                      directions=("en-de",), vocab_size=2000 if args.quick else 8000, max_tokens=4096,
                      max_length=100)
    model = shape(args, width)
    train_config = TrainConfig(output_dir=str(run), steps=1_000_000, lr=3e-3 * 128 / model.d_model,
                               warmup_steps=50 if args.quick else 600, eval_every=1_000_000,
                               eval_bleu_sentences=20, log_every=50, device=args.device, progress=False)
    return ExperimentConfig(model=model, data=data, train=replace(train_config, **settings))


def budget(steps: int, minutes: float) -> dict[str, Any]:
    """A run's budget as train settings: steps when given (with a fifth of them to warm up, at
    most the usual 600), else minutes of training."""
    if steps:
        return {"steps": steps, "time_budget_minutes": 0.0, "warmup_steps": min(600, max(50, steps // 5))}
    return {"time_budget_minutes": minutes}


def write_toml(config: ExperimentConfig, path: Path) -> Path:
    """`config` as a TOML file for `polyseq train`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config.to_toml(), encoding="utf-8")
    return path


def command(arguments: list[str], processes: int, threads: int) -> tuple[list[str], dict[str, str]]:
    launcher = [*TORCHRUN, f"--nproc-per-node={processes}"] if processes > 1 else [sys.executable]
    return [*launcher, "-m", "polyseq", *arguments], {**os.environ, "OMP_NUM_THREADS": str(threads)}


def polyseq(arguments: list[str], processes: int = 1, threads: int = 1) -> float:
    """Run `polyseq ARGUMENTS` (under torchrun with processes > 1); its wall-clock seconds."""
    line, env = command(arguments, processes, threads)
    started = time.perf_counter()
    done = subprocess.run(line, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {' '.join(line)}\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def share_tokenizer(args: argparse.Namespace, run: Path) -> None:
    """Every run trains on one tokenizer, made once (its training is not what is timed)."""
    made = args.output / "tokenizer" / "tokenizer.model"
    if not made.is_file():
        from polyseq.train.data import prepare_data

        config = experiment(args, args.output / "tokenizer-run", str(args.data / "train"), 128)
        prepare_data(config.data, made.parent, config.train.seed, log=lambda message: None)
    (run / "tokenizer").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(made, run / "tokenizer" / "tokenizer.model")


def fresh_run(args: argparse.Namespace, name: str) -> Path:
    run = args.output / name
    shutil.rmtree(run, ignore_errors=True)
    share_tokenizer(args, run)
    return run


# ------------------------------------------------------------------------------------- parts


def training(args: argparse.Namespace) -> dict[str, Any]:
    rows = []
    settings = (("2x1", args.processes, 1, 1), ("1x2", 1, 2, args.processes), ("1x1", 1, 1, args.processes))
    for name, processes, threads, accumulate in settings:
        run = fresh_run(args, f"train-{name}")
        config = experiment(args, run, str(args.data / "train"), 256, accumulate=accumulate,
                            threads=threads, time_budget_minutes=args.train_seconds / 60,
                            save_every=args.save_every)
        polyseq(["train", str(write_toml(config, run / "experiment.toml"))], processes, threads)
        counters = torch.load(run / "last" / "trainer.pt", weights_only=True)["counters"]
        costs = [r["seconds"] for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "checkpoint"]
        rows.append({"setting": name, "processes": processes, "threads": threads, "accumulate": accumulate,
                     "steps": counters["step"], "training_seconds": round(counters["seconds"], 1),
                     "tgt_tokens_per_s": round(counters["tokens"] / counters["seconds"], 1),
                     "checkpoints": len(costs),
                     "checkpoint_seconds": round(sum(costs) / max(len(costs), 1), 3)})
        print(f"training {name}: {rows[-1]}")
    speed = {row["setting"]: row["tgt_tokens_per_s"] for row in rows}
    base = rows[1]  # 1 x 2: a checkpoint's cost against the training time between two of them
    between = base["training_seconds"] / max(base["steps"], 1) * args.save_every
    weights = (args.output / "train-1x2" / "last" / "model.safetensors").stat().st_size
    return {"rows": rows, "ratio_2x1_over_1x2": round(speed["2x1"] / speed["1x2"], 3),
            "ratio_2x1_over_1x1": round(speed["2x1"] / speed["1x1"], 3), "save_every": args.save_every,
            "weights_mb": round(weights / 2**20, 1),
            "checkpoint_cost_over_training_between": round(base["checkpoint_seconds"] / between, 4)}


def kill(args: argparse.Namespace) -> dict[str, Any]:
    """SIGKILL at random points, each followed by --resume, against an uninterrupted run."""
    spec = corpus(args, args.kill_lines, "kill")
    settings = dict(steps=args.kill_steps, save_every=max(1, args.kill_steps // 40), threads=1,
                    eval_every=args.kill_steps // 2, average_last=2)
    straight = fresh_run(args, "kill-straight")
    config_file = write_toml(experiment(args, straight, spec, 128, **settings), straight / "experiment.toml")
    polyseq(["train", str(config_file)])
    counters = torch.load(straight / "last" / "trainer.pt", weights_only=True)["counters"]
    costs = [r["seconds"] for r in read_metrics(straight / "metrics.jsonl") if r["kind"] == "checkpoint"]
    span = counters["seconds"] + sum(costs)  # what a kill can land in: steps and checkpoint writes
    run = fresh_run(args, "kill-run")
    config_file = write_toml(experiment(args, run, spec, 128, **settings), run / "experiment.toml")
    rng, points = random.Random(1), []
    for _ in range(args.kills):
        resume = ["--resume"] if (run / "last").exists() or (run / ".last.old").exists() else []
        line, env = command(["train", str(config_file), *resume], 1, 1)
        process = subprocess.Popen(line, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   text=True)
        for text in process.stderr:  # type: ignore[union-attr]
            if text.startswith("model:"):
                break
        time.sleep(rng.uniform(0, 2 * span / args.kills))
        process.send_signal(signal.SIGKILL)
        process.wait()
        writing = any(entry.name.startswith(".last.") for entry in os.scandir(run))
        metadata = run / "last" / "metadata.json"
        step = json.loads(metadata.read_text())["steps"] if metadata.is_file() else 0
        points.append({"saved_step": step, "during_checkpoint_write": writing})
    polyseq(["train", str(config_file), "--resume"])
    identical = {name: _same_weights(straight / name, run / name) for name in ("last", "best", "averaged")}
    print(f"kill: {len(points)} kills, identical {identical}")
    writes = sum(point["during_checkpoint_write"] for point in points)
    return {"kills": len(points), "during_checkpoint_write": writes,
            "points": points, "identical": identical, "steps": args.kill_steps,
            "save_every": settings["save_every"], "training_pairs": args.kill_lines}


def _same_weights(a: Path, b: Path) -> bool:
    first, second = (load_file(str(path / "model.safetensors")) for path in (a, b))
    return first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first)


def translation(args: argparse.Namespace, teacher: Path) -> dict[str, Any]:
    source = args.output / "translate.en"
    lines = read_text_lines(args.data / "train.en")[: args.translate_lines]
    write_atomic(source, "".join(line + "\n" for line in lines))
    rows, outputs = [], {}
    for name, processes, threads in (("2x1", args.processes, 1), ("1x2", 1, 2), ("1x1", 1, 1)):
        output = args.output / f"translate-{name}.de"
        output.unlink(missing_ok=True)
        seconds = polyseq(["translate", "-m", str(teacher), "--src", "en", "--tgt", "de", "-i", str(source),
                           "-o", str(output), "-s", "beam", "--beam-size", "5", "--device", args.device],
                          processes, threads)
        outputs[name] = output.read_bytes()
        rows.append({"setting": name, "seconds": round(seconds, 2),
                     "lines_per_s": round(args.translate_lines / seconds, 2)})
        print(f"translation {name}: {rows[-1]}")
    speed = {row["setting"]: row["lines_per_s"] for row in rows}
    return {"lines": args.translate_lines, "strategy": "beam 5", "rows": rows,
            "identical_outputs": len(set(outputs.values())) == 1,
            "ratio_2x1_over_1x2": round(speed["2x1"] / speed["1x2"], 3),
            "note": "wall-clock seconds of whole commands, model loading and process start included"}


def teacher_model(args: argparse.Namespace) -> Path:
    """The teacher, trained for --teacher-steps or --teacher-minutes (or reused from --output)."""
    run = args.output / "teacher"
    if not (run / "best" / "model.safetensors").is_file():
        share_tokenizer(args, run)
        torch.set_num_threads(2)
        config = experiment(args, run, str(args.data / "train"), 256,
                            **budget(args.teacher_steps, args.teacher_minutes), eval_every=500,
                            eval_bleu_sentences=100)
        train(config, resume=(run / "last").is_dir())
    return run / "best"


def distillation(args: argparse.Namespace, teacher: Path) -> dict[str, Any]:
    run = args.output / "student"
    spec = corpus(args, args.distill_lines, "distill")
    config = experiment(args, run, spec, 128, **budget(args.student_steps, args.student_minutes),
                        eval_every=500, eval_bleu_sentences=100, threads=1 if args.processes > 1 else 2)
    started = time.perf_counter()
    polyseq(["distill", "-t", str(teacher), str(write_toml(config, args.output / "student.toml")),
             *(["--resume"] if (run / "last").exists() else [])], args.processes, 1)
    wall = time.perf_counter() - started
    sources = read_text_lines(args.data / "test_2016_flickr.en")
    references = read_text_lines(args.data / "test_2016_flickr.de")
    torch.set_num_threads(2)
    translators = {"teacher": Translator.load(teacher, device=args.device),
                   "student": Translator.load(run / "best", device=args.device)}
    models = {name: evaluate(translator, sources, references) for name, translator in translators.items()}
    for name, speed in batch1_speeds(translators, sources[: args.speed_sentences]).items():
        models[name]["greedy_sentences_per_s_batch1"] = speed
    print(f"distillation: {models}")
    return {"teacher": models["teacher"], "student": models["student"],
            "bleu_gap_greedy": round(models["teacher"]["bleu_greedy"] - models["student"]["bleu_greedy"], 2),
            "bleu_gap_beam5": round(models["teacher"]["bleu_beam5"] - models["student"]["bleu_beam5"], 2),
            "greedy_speedup_batch1": round(models["student"]["greedy_sentences_per_s_batch1"]
                                           / models["teacher"]["greedy_sentences_per_s_batch1"], 2),
            "distill_wall_seconds": round(wall, 1), "processes": args.processes,
            "teacher_budget": budget(args.teacher_steps, args.teacher_minutes),
            "student_budget": budget(args.student_steps, args.student_minutes),
            "distilled_pairs": args.distill_lines or "all"}


def evaluate(translator: Translator, sources: list[str], references: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {"parameters": translator.model.parameter_count(),
                              "width": translator.model.config.d_model}
    for name, strategy, settings in (("greedy", "greedy", {}), ("beam5", "beam", {"beam_size": 5})):
        outputs = translator.translate(sources, "en", "de", strategy, **settings)
        result[f"bleu_{name}"] = round(score_translations(outputs, [references]).bleu, 2)
    return result


def batch1_speeds(translators: dict[str, Translator], texts: list[str]) -> dict[str, float]:
    """Greedy sentences/s at batch 1 of each model, the models taking turns sentence by sentence
    (each first every other time), so that a slow spell of the shared machine slows them alike."""
    seconds = dict.fromkeys(translators, 0.0)
    for index, text in enumerate(texts):
        for name in list(translators)[:: 1 if index % 2 == 0 else -1]:
            started = time.perf_counter()
            translators[name].translate([text], "en", "de", "greedy")
            seconds[name] += time.perf_counter() - started
    return {name: round(len(texts) / spent, 2) for name, spent in seconds.items()}


def main() -> None:
    args = parse_arguments()
    if not (args.data / "train.en").is_file():
        sys.exit(f"multi30k not found in {args.data}: pass --data DIR (see ../shared/data/README.md)")
    parts = [part for part in args.parts.split(",") if part]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        sys.exit(f"unknown parts {unknown}: choose from {', '.join(PARTS)}")
    args.output.mkdir(parents=True, exist_ok=True)
    report = json.loads(args.result.read_text()) if args.result.is_file() else {}
    command = "python bench/scale.py " + shlex.join(sys.argv[1:])
    machine = {"cpus": os.cpu_count(), "torch": torch.__version__, "device": args.device}
    report.setdefault("commands", []).append(command)
    report.update(machine=machine)  # the latest run's; each part keeps its own beside its command
    for part in parts:
        if part in ("training", "kill"):
            report[part] = training(args) if part == "training" else kill(args)
        else:
            teacher = teacher_model(args)
            measure = translation if part == "translation" else distillation
            report[part] = measure(args, teacher)
        # parts of several runs merge into one file: each says which command and machine made it
        report[part] |= {"quick": args.quick, "command": command, "machine": machine}
        write_report(args.result, report)
    print(json.dumps({part: report[part] for part in parts}, indent=1)[:4000])


if __name__ == "__main__":
    main()
