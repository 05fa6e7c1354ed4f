"""Files in and out: reading a user's UTF-8 text with errors that name the place, and atomic writes.

An atomic write goes to a temporary file in the same folder, fsynced, then renamed over the target,
so a reader never sees half a file and a failure leaves the old file as it was. Temporary files and
folders are created with the ordinary modes (0o666, 0o777), which the kernel narrows by the umask:
the result gets the permissions a plain write would give, or keeps those of the file it replaces.
A symbolic link is written through (the file it names is replaced, the link stays), and a device
or FIFO (/dev/stdout, /dev/null) is written directly: nothing can be renamed over it.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


class InputError(ValueError):
    """User input that cannot be used as given (the message says where and why)."""


def read_text(path: str | Path) -> str:
    """A text file's content as strict UTF-8 (a byte-order mark is kept: a document is written back
    with it). A missing, unreadable, binary or non-UTF-8 file is an InputError naming the file,
    line and column."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: cannot read it ({error.strerror})") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(f"{path} is UTF-16 text (its byte-order mark says so); convert it to UTF-8 "
                         "(for example iconv -f utf-16 -t utf-8) and try again")
    nul = data.find(b"\x00")
    if nul >= 0:
        line, column = _position(data, nul)
        raise InputError(f"{path}, line {line}, column {column}: a NUL byte; this is a binary file, "
                         "not UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line, column = _position(data, error.start)
        raise InputError(
            f"{path}, line {line}, column {column}: not valid UTF-8 (byte 0x{data[error.start]:02x}); "
            "convert the file to UTF-8 (for example iconv -f latin1 -t utf-8) and try again"
        ) from None


def read_text_lines(path: str | Path) -> list[str]:
    """The lines of a UTF-8 text file (see `read_text`) without their "\\n" or "\\r\\n", nor a
    leading byte-order mark. Only "\\n" ends a line (not the other characters str.splitlines
    knows), so aligned files keep their alignment."""
    text = read_text(path).removeprefix("\ufeff")
    if not text:
        return []
    lines = text.removesuffix("\n").split("\n")
    if "\r" in text:
        lines = [line.removesuffix("\r") for line in lines]
    return lines


def decode_lines(stream: Iterable[bytes], name: str) -> Iterator[str]:
    """Lines of a byte stream (stdin) as `read_text_lines` reads a file's, one at a time."""
    for number, raw in enumerate(stream, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InputError(f"{name}, line {number}, column {error.start + 1}: not valid UTF-8 (byte "
                             f"0x{raw[error.start]:02x})") from None
        if "\x00" in line:  # as read_text refuses it in a file
            raise InputError(f"{name}, line {number}, column {line.index(chr(0)) + 1}: a NUL byte; "
                             "this is binary data, not UTF-8 text")
        yield (line.removeprefix("\ufeff") if number == 1 else line).removesuffix("\n").removesuffix("\r")


def _position(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in bytes) of a byte offset."""
    return data.count(b"\n", 0, offset) + 1, offset - data.rfind(b"\n", 0, offset)


def check_output(path: str | Path) -> None:
    """InputError unless a file can be written at `path`: not a folder, and in a folder that exists
    (checked before the work whose result goes there)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder: give the name of a file to write")
    if not path.parent.is_dir():
        raise InputError(f"{path}: the folder {path.parent} does not exist; create it or choose another path")


@contextmanager
def atomic_file(path: str | Path, binary: bool = False) -> Iterator[IO[Any]]:
    """A handle whose content replaces `path` when the block ends without an error (see the
    module's docstring); on an error, `path` stays as it was."""
    path = Path(path)
    path = path.resolve() if path.is_symlink() else path  # the link stays, the file it names is replaced
    check_output(path)
    mode, encoding = "wb" if binary else "w", None if binary else "utf-8"
    if path.exists() and not stat.S_ISREG(path.stat().st_mode):  # a device or FIFO, after links
        with path.open(mode, encoding=encoding) as direct:
            yield direct
        return
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        with os.fdopen(handle, mode, encoding=encoding) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        if path.exists():
            os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write `data` (text as UTF-8) to `path` atomically."""
    with atomic_file(path, binary=True) as out:
        out.write(data.encode("utf-8") if isinstance(data, str) else data)


def write_json_atomic(path: str | Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def new_directory(parent: Path, prefix: str) -> Path:
    """A new, empty folder under `parent` with a fresh name, made with the mode a plain mkdir gives."""
    while True:
        candidate = parent / f"{prefix}{secrets.token_hex(6)}"
        try:
            candidate.mkdir(mode=0o777)
            return candidate
        except FileExistsError:
            continue
