"""Exact resume after a hard stop: a training process killed with SIGKILL at random points (some
while it writes a checkpoint) or stopped by SIGINT / SIGTERM, and started again with --resume each
time, ends with the weights of a run that never stopped."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file

from helpers import tiny_experiment
from polyseq.model.checkpoint import load_model, recover_directory, write_directory_atomic
from polyseq.train.loop import train
from spawn import finish, polyseq, write_toml


def start(config_file: Path, run: Path) -> subprocess.Popen[str]:
    """`polyseq train`, with --resume once there is something to resume; returns when the
    process starts training (its "model: ..." line)."""
    resume = (run / "last").exists() or (run / ".last.old").exists()
    process = polyseq("train", str(config_file), *(["--resume"] if resume else []))
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("model:"):
            return process
    raise AssertionError(f"the run ended before training: {finish(process)}")


def saved_step(run: Path) -> int:
    try:
        return json.loads((run / "last" / "metadata.json").read_text())["steps"]
    except OSError:  # none yet, or last/ in the middle of being replaced
        return 0


def stop_at(process: subprocess.Popen[str], run: Path, step: int, point: str, rng: random.Random) -> None:
    """Once last/ holds `step`, stop `process`: at a random moment soon after (SIGKILL), while it
    writes last/ (SIGKILL as soon as a staging folder appears), or by SIGINT / SIGTERM, which
    let it finish the step and save first."""
    deadline = time.monotonic() + 60
    while saved_step(run) < step or (point == "writing" and not any(
            entry.name.startswith(".last.") for entry in os.scandir(run))):
        assert process.poll() is None and time.monotonic() < deadline, f"no step {step} ({point})"
        time.sleep(0.002)  # a write of last/ takes longer: one is seen
    if point == "random":
        time.sleep(rng.uniform(0, 0.1))
    number = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}.get(point, signal.SIGKILL)
    process.send_signal(number)
    code, _, err = finish(process)
    if number != signal.SIGKILL:
        assert code == 130 and "continue with --resume" in err, err[-2000:]


def test_killed_at_random_points_and_resumed_it_ends_as_a_run_that_never_stopped(tmp_path: Path) -> None:
    config = tiny_experiment(tmp_path / "data", tmp_path / "run", steps=36, eval_every=12, dropout=0.1)
    config = replace(config, train=replace(config.train, threads=1, save_every=1, average_last=2))
    train(replace(config, train=replace(config.train, output_dir=str(tmp_path / "straight"))),
          log=lambda message: None)
    run, config_file = tmp_path / "run", write_toml(config, tmp_path / "run.toml")
    rng = random.Random(27)
    targets = sorted(rng.sample(range(2, 32), 5))
    steps = []
    for target, point in zip(targets, ("random", "writing", "SIGINT", "writing", "SIGTERM"), strict=True):
        stop_at(start(config_file, run), run, target, point, rng)
        steps.append(saved_step(run))
    code, _, err = finish(start(config_file, run))
    assert code == 0, err[-3000:]
    assert steps == sorted(steps) and steps[-1] < 36, steps  # it stopped at several points, never at the end
    for name in ("last", "best", "averaged"):
        expected = load_file(str(tmp_path / "straight" / name / "model.safetensors"))
        actual = load_file(str(run / name / "model.safetensors"))
        assert all(torch.equal(expected[key], actual[key]) for key in expected), name
    left = [entry.name for entry in os.scandir(run) if entry.name.startswith(".")]
    assert left == [], left  # nothing half-written stays behind


def test_the_sigterm_that_follows_a_ctrl_c_lets_the_last_write_finish(tmp_path: Path) -> None:
    """A Ctrl-C under torchrun reaches the workers from the terminal, then from torchrun as SIGTERM a
    moment later: the same request, which must not cut short the write of last/ that it started."""
    config = tiny_experiment(tmp_path / "data", tmp_path / "run", steps=100_000, eval_every=100_000)
    config = replace(config, train=replace(config.train, threads=1, log_every=1))
    run = tmp_path / "run"
    process = start(write_toml(config, tmp_path / "run.toml"), run)
    while not (run / "metrics.jsonl").is_file():  # a step is done: the loop and its handlers run
        assert process.poll() is None, finish(process)
        time.sleep(0.002)
    process.send_signal(signal.SIGINT)
    while not any(entry.name.startswith(".last.") for entry in os.scandir(run)):  # the write of last/
        assert process.poll() is None, finish(process)
        time.sleep(0.001)
    process.send_signal(signal.SIGTERM)
    code, _, err = finish(process)
    assert code == 130 and "continue with --resume" in err, (code, err[-2000:])
    load_model(run / "last")


def test_a_checkpoint_set_aside_when_the_writer_died_comes_back(tmp_path: Path) -> None:
    """The state a kill leaves between the two renames of a checkpoint write: the old directory
    set aside (.last.old), the new one still in its staging folder."""
    def fill(step: int) -> object:
        return lambda folder: (folder / "step").write_text(str(step))

    last = write_directory_atomic(tmp_path / "last", fill(1))
    staging = tmp_path / ".last.0123456789ab"
    staging.mkdir()
    fill(2)(staging)
    os.replace(last, tmp_path / ".last.old")
    assert recover_directory(last) and (last / "step").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]
    # killed after the second rename: the new directory stands, the old one goes
    shutil.copytree(last, tmp_path / ".last.old")
    assert not recover_directory(last) and sorted(p.name for p in tmp_path.iterdir()) == ["last"]
