"""Training in more than one process, for real: torchrun starts two CPU processes (gloo, one
thread each) and they must train the model one process trains on the same global batches; a
process that dies stops the run with a clear error and leaves the last checkpoint whole."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers import tiny_experiment
from polyseq.cluster import Cluster
from polyseq.config import ExperimentConfig
from polyseq.data.batching import BatchStream
from polyseq.data.corpus import Example
from polyseq.model.checkpoint import load_model
from polyseq.train.distributed import take_share
from polyseq.train.loop import TRAINER_STATE, train
from spawn import TORCHRUN, children, environment, finish, polyseq, rank_of, write_toml


def relative_differences(expected_dir: Path, actual_dir: Path, key_biases: bool = True) -> dict[str, float]:
    """|expected - actual| / |expected| per tensor. Without `key_biases`, the key part of the
    attention biases is left out: its gradient is zero in exact arithmetic (a constant added to
    every score of a query leaves its softmax as it was), so Adam turns the rounding noise of
    another summation order into whole updates there."""
    expected = load_file(str(expected_dir / "model.safetensors"))
    actual = load_file(str(actual_dir / "model.safetensors"))
    assert expected.keys() == actual.keys()
    differences = {}
    for name, tensor in expected.items():
        other = actual[name]
        if not key_biases and name.endswith(("qkv.bias", "kv.bias")):
            width = tensor.shape[0] // (3 if name.endswith("qkv.bias") else 2)
            start = width if name.endswith("qkv.bias") else 0  # q, k, v / k, v
            keep = torch.ones_like(tensor, dtype=torch.bool)
            keep[start : start + width] = False
            tensor, other = tensor[keep], other[keep]
        differences[name] = float((tensor - other).norm() / tensor.norm().clamp_min(1e-12))
    return differences


def experiment(tmp_path: Path, name: str, **train_settings: object) -> ExperimentConfig:
    config = tiny_experiment(tmp_path / "data", tmp_path / name, steps=6, eval_every=6)
    return replace(config, train=replace(config.train, threads=1, **train_settings))


def test_the_processes_shares_make_up_what_one_process_takes() -> None:
    examples = [Example(list(range(1, 2 + i % 7)), list(range(1, 3 + i % 5))) for i in range(200)]
    streams = [BatchStream(examples, 40, pad_id=0, seed=3) for _ in range(4)]  # one process, ranks 0-2
    for _ in range(5):  # steps, across an epoch's end
        alone = take_share(streams[0], Cluster(), accumulate=6)
        shares = [take_share(stream, Cluster(rank, 3), accumulate=2) for rank, stream in
                  enumerate(streams[1:])]
        together = [shares[position % 3][position // 3] for position in range(6)]
        assert [b.src.tolist() for b in together] == [b.src.tolist() for b in alone]
        assert all(stream.state() == streams[0].state() for stream in streams)


# forwards of their own, the encoder's alone, and gradients with respect to states inside a step
COMPOSED = {"translation": 1.0, "denoising": 0.5, "e2s2": 0.3, "claps": 0.1}


@pytest.mark.parametrize(("layout", "accumulate", "stops", "objectives", "frozen"),
                         [("ddp", 1, [], {"translation": 1.0}, ()), ("ddp", 1, [], COMPOSED, ()),
                          ("ddp", 1, [3], {"translation": 1.0}, ("embeddings", "encoder")),
                          ("fsdp", 2, [3], {"translation": 1.0}, ())])
def test_two_processes_train_what_one_trains_on_the_same_global_batches(
        tmp_path: Path, layout: str, accumulate: int, stops: list[int], objectives: dict[str, float],
        frozen: tuple[str, ...]) -> None:
    """FSDP also stops at step 3 and resumes: its checkpoints gather the shards and scatter them
    back; DDP with frozen parts too (their parameters are no part of its gradient buckets)."""
    two = experiment(tmp_path, "two", accumulate=accumulate, fsdp=layout == "fsdp", objectives=objectives,
                     freeze=frozen)
    config_file = write_toml(two, tmp_path / "two.toml")
    for stop in [*stops, two.train.steps]:
        resume = ["--resume"] if (tmp_path / "two" / "last").exists() else []
        job = polyseq("train", str(config_file), f"train.steps={stop}", *resume, processes=2)
        code, _, err = finish(job)
        assert code == 0, err[-3000:]
    one = experiment(tmp_path, "one", accumulate=2 * accumulate, objectives=objectives, freeze=frozen)
    train(one, log=lambda message: None)
    # with one batch per process the gradient sums are those of one process, bit for bit;
    # with more, they are added in another order
    differences = relative_differences(tmp_path / "one" / "last", tmp_path / "two" / "last",
                                       key_biases=accumulate == 1)
    assert max(differences.values()) <= 1e-6, differences
    # the global batches were the same: as many target tokens, and the same data position
    one_state, two_state = (torch.load(tmp_path / name / "last" / TRAINER_STATE, weights_only=True)
                            for name in ("one", "two"))
    assert two_state["counters"]["tokens"] == one_state["counters"]["tokens"]
    for name, head in one_state["heads"].items():  # claps's projection: its gradients are summed too
        assert float((head - two_state["heads"][name]).norm() / head.norm()) <= 1e-6, name
    assert two_state["stream"] == one_state["stream"] and two_state["world_size"] == 2
    assert len(two_state["rng"]) == 2 and not torch.equal(*two_state["rng"])  # dropout draws of its own
    validations = [r for r in map(json.loads, (tmp_path / "two" / "metrics.jsonl").open())
                   if r["kind"] == "valid"]
    assert [r["step"] for r in validations] == [*stops, 6]  # once each time, by the main process


def test_a_process_that_dies_stops_the_run_and_leaves_the_last_checkpoint_whole(tmp_path: Path) -> None:
    config = experiment(tmp_path, "run", steps=100_000, eval_every=100_000, save_every=3)
    job = polyseq("train", str(write_toml(config, tmp_path / "run.toml")), processes=2)
    last = tmp_path / "run" / "last"
    deadline = time.monotonic() + 90
    while not (last / TRAINER_STATE).is_file() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = {rank_of(pid): pid for pid in children(job.pid)}
    os.kill(workers[1], signal.SIGKILL)
    code, _, err = finish(job, timeout=60)
    assert code != 0
    assert "Signal 9 (SIGKILL)" in err and "rank      : 1" in err  # torchrun names the process
    if "lost contact" in err:  # the main process's own words, when it got to say them
        assert "is intact: continue with --resume" in err
    load_model(last)  # whole: it loads, and a run resumes from it, here in one process
    state = torch.load(last / TRAINER_STATE, weights_only=True)
    step = state["counters"]["step"]
    assert step > 0 and step % 3 == 0
    notes: list[str] = []
    result = train(replace(config, train=replace(config.train, steps=step + 2)), resume=True,
                   log=notes.append)
    assert result.steps == step + 2
    change = next(note for note in notes if note.startswith("note:"))
    assert "trained by 2 process(es)" in change and "train.accumulate=2 keeps 2 batches" in change


# a torchrun process: train (argv: the TOML, --resume and overrides), then count gloo's threads left,
# while the error that stopped it, if one did, and the frames it passed through are still alive
TRAIN_AND_COUNT = """
import os, sys
from polyseq.config import load_config
from polyseq.train.loop import TrainingError, train

def gloo_threads():
    names = [open(f"/proc/self/task/{task}/comm").read().strip() for task in os.listdir("/proc/self/task")]
    return sum(name.startswith(("pt_gloo", "gloo")) for name in names)

def say(line):  # one write of a whole line: the two processes share the pipe
    os.write(1, (line + "\\n").encode())

try:
    train(load_config(sys.argv[1], sys.argv[3:]), resume=sys.argv[2] == "--resume", log=lambda message: None)
    say(f"gloo threads left: {gloo_threads()}")
except TrainingError:
    say(f"gloo threads left after an error: {gloo_threads()}")
"""


def test_the_process_group_is_gone_when_training_returns_or_fails(tmp_path: Path) -> None:
    """Its threads stopped by destroy_process_group, not left running into the interpreter's
    shutdown, where tearing them down can abort the process ("terminate called without an active
    exception"): DDP imports torch._dynamo, which kept the group alive when imported after it was
    made, and an error on its way out (here a resume with other settings; a stop by signal, a lost
    process) held the trainer, and its model the group."""
    config_file = write_toml(experiment(tmp_path, "run", steps=2, eval_every=2), tmp_path / "run.toml")
    for args, expected in ([["--fresh"], "gloo threads left: 0"],
                           [["--resume", "model.ffn_dim=128"], "gloo threads left after an error: 0"]):
        command = [*TORCHRUN, "--standalone", "--nproc-per-node=2", "--no-python", sys.executable,
                   "-c", TRAIN_AND_COUNT, str(config_file), *args]
        job = subprocess.Popen(command, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
        code, out, err = finish(job)
        assert code == 0, err[-3000:]
        assert out.split("\n").count(expected) == 2, out
