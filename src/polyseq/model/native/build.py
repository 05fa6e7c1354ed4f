"""Build kernels.cpp for this machine once, and load it.

The library is compiled with the system's C++ compiler (`CXX`, else g++) for this CPU
(-march=native) into a cache folder (`POLYSEQ_NATIVE_CACHE`, else ~/.cache/polyseq/native), named
by a hash of the source, the flags and the CPU, so a new version or another machine builds anew and
a build is shared by every process after the first. Nothing is downloaded: it needs only the
compiler and the OpenMP runtime PyTorch already loaded.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("kernels.cpp")
# -ffp-contract=off: the kernels write every FMA they mean, so no build fuses one sum and not another
FLAGS = ["-O3", "-march=native", "-fopenmp", "-ffp-contract=off", "-std=c++17", "-shared", "-fPIC"]


class BuildError(RuntimeError):
    """The native library could not be built or loaded here; the message says why."""


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def cache_folder() -> Path:
    configured = os.environ.get("POLYSEQ_NATIVE_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "polyseq" / "native"


def library_path(compiler: str) -> Path:
    key = hashlib.sha256(b"\0".join([SOURCE.read_bytes(), " ".join([compiler, *FLAGS]).encode(),
                                     _cpu().encode(), platform.machine().encode()])).hexdigest()[:16]
    return cache_folder() / f"polyseq_native_{key}.so"


def build() -> ctypes.CDLL:
    """The loaded library, built first if this machine has no build of this source yet."""
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        raise BuildError("no C++ compiler found (set CXX, or install g++)")
    target = library_path(compiler)
    if not target.is_file():
        try:
            import fcntl  # POSIX: other systems have no build here
        except ImportError as error:
            raise BuildError(f"no file locks here ({error})") from error
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one process builds, the others wait for it
            if not target.is_file():
                _compile(compiler, target)
    try:
        return ctypes.CDLL(str(target))
    except OSError as error:
        raise BuildError(f"could not load {target}: {error}") from error


def _compile(compiler: str, target: Path) -> None:
    handle, partial = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(handle)
    try:
        done = subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", partial], capture_output=True, text=True)
        if done.returncode != 0:
            raise BuildError(f"{compiler} failed on {SOURCE.name}: {done.stderr.strip()[-2000:]}")
        os.replace(partial, target)  # whole or not at all
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
