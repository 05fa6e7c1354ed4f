"""Atomic file writes: a temporary file in the same folder, fsynced, then renamed over the
target, so a reader never sees half a file and a failure leaves the old file as it was. The
result gets the permissions a plain write would give (temporary files are private), or keeps
those of the file it replaces."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write `data` (text as UTF-8) to `path` atomically."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, stat.S_IMODE(path.stat().st_mode) if path.exists() else public_mode())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def public_mode(directory: bool = False) -> int:
    """The mode `open` or `mkdir` would give a new file or folder under the current umask."""
    umask = os.umask(0)  # the only way to read it is to set it
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask
