"""Helpers for tests that start real processes: polyseq's command line, torchrun, and the
experiment written as a TOML file for them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from polyseq.config import ExperimentConfig

SOURCE = Path(__file__).resolve().parents[1] / "src"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def write_toml(config: ExperimentConfig, path: Path) -> Path:
    """`config` as a TOML file that polyseq's command line reads back to the same config."""
    path.write_text(config.to_toml(), encoding="utf-8")
    return path


def environment(threads: int = 1) -> dict[str, str]:
    """This interpreter's environment, with polyseq's source first and `threads` per process."""
    paths = [str(SOURCE), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "OMP_NUM_THREADS": str(threads)}


def polyseq(*args: str, processes: int = 1, **options: Any) -> subprocess.Popen[str]:
    """`python -m polyseq ARGS`, or under torchrun with `processes` > 1, started (not waited for)."""
    launcher = [sys.executable] if processes == 1 else [
        *TORCHRUN, "--standalone", f"--nproc-per-node={processes}", "--monitor-interval=0.1"]
    # a session of its own: a test that gives up on it can stop torchrun and its workers together
    return subprocess.Popen([*launcher, "-m", "polyseq", *args], env=environment(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **options)


def finish(process: subprocess.Popen[str], timeout: float = 180) -> tuple[int, str, str]:
    """Wait for `process`; one still running after `timeout` seconds is killed with all it
    started, and the test fails."""
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        raise AssertionError(f"still running after {timeout} s: {err[-3000:]}") from None
    return process.returncode, out, err


def children(pid: int) -> list[int]:
    """The processes `pid` started (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text()
        found += [int(child) for child in text.split()]
    return found


def rank_of(pid: int) -> int | None:
    """The RANK in a process's environment, if it has one."""
    for entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
        if entry.startswith(b"RANK="):
            return int(entry[5:])
    return None
