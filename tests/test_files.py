"""Atomic writes give their results the permissions a plain write would, so that a model or a
translated document can be read by whoever could read a file written the ordinary way; they write
through links and into FIFOs, and name a path they cannot write before writing."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from polyseq.config import ModelConfig
from polyseq.files import InputError, check_output, decode_lines, read_text, read_text_lines, write_atomic
from polyseq.model.checkpoint import CheckpointError, save_model_files, write_directory_atomic
from polyseq.model.transformer import Seq2Seq


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_files_and_folders_get_the_umask_permissions(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "out.txt", "hallo")
        write_directory_atomic(tmp_path / "model", lambda d: write_atomic(d / "config.json", "{}"))
    finally:
        os.umask(old)
    assert mode(tmp_path / "out.txt") == mode(tmp_path / "model" / "config.json") == 0o644
    assert mode(tmp_path / "model") == 0o755
    assert (tmp_path / "out.txt").read_text() == "hallo"


def test_a_saved_model_is_readable_by_others(tmp_path: Path) -> None:
    model = Seq2Seq(ModelConfig(vocab_size=64, d_model=16, encoder_layers=1, decoder_layers=1,
                                heads=2, ffn_dim=32))
    old = os.umask(0o022)
    try:
        write_directory_atomic(tmp_path / "model", lambda d: save_model_files(d, model, {}))
    finally:
        os.umask(old)
    assert {p.name: mode(p) for p in (tmp_path / "model").iterdir()} == {
        "config.json": 0o644, "metadata.json": 0o644, "model.safetensors": 0o644}


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "secret.txt"
    target.write_text("old")
    target.chmod(0o600)
    write_atomic(target, "new")
    assert mode(target) == 0o600 and target.read_text() == "new"


def test_a_private_umask_gives_private_results_and_is_never_changed(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        write_atomic(tmp_path / "out.txt", "hallo")
        write_directory_atomic(tmp_path / "model", lambda d: write_atomic(d / "config.json", "{}"))
        assert os.umask(0o077) == 0o077  # what polyseq left in place
    finally:
        os.umask(old)
    assert mode(tmp_path / "out.txt") == mode(tmp_path / "model" / "config.json") == 0o600
    assert mode(tmp_path / "model") == 0o700


def test_reading_text_names_the_file_and_the_place(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("eins\nzwei\ndr\xe9i\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1.txt, line 3, column 3: not valid UTF-8 \(byte 0xe9\)"):
        read_text_lines(bad)
    binary = tmp_path / "data.bin"
    binary.write_bytes(b"ab\x00cd")
    with pytest.raises(InputError, match="data.bin, line 1, column 3: a NUL byte"):
        read_text(binary)
    with pytest.raises(InputError, match="missing.txt does not exist"):
        read_text(tmp_path / "missing.txt")
    lines = tmp_path / "lines.txt"
    lines.write_bytes(b"\xef\xbb\xbfone\r\ntwo\x0bstill two\n\nfour")  # BOM, CRLF, a vertical tab
    assert read_text_lines(lines) == ["one", "two\x0bstill two", "", "four"]
    (tmp_path / "empty.txt").write_text("")
    assert read_text_lines(tmp_path / "empty.txt") == []
    (tmp_path / "wide.txt").write_bytes("one\n".encode("utf-16"))
    with pytest.raises(InputError, match=r"wide.txt is UTF-16 text .* iconv -f utf-16 -t utf-8"):
        read_text(tmp_path / "wide.txt")
    with pytest.raises(InputError, match="stdin, line 2, column 2: a NUL byte"):
        list(decode_lines([b"ok\n", b"a\x00b\n"], "stdin"))


def test_an_atomic_write_goes_through_a_link_and_into_a_fifo(tmp_path: Path) -> None:
    real, link = tmp_path / "real.txt", tmp_path / "link.txt"
    real.write_text("old")
    real.chmod(0o640)
    link.symlink_to(real)
    write_atomic(link, "new")
    assert link.is_symlink() and real.read_text() == "new" and mode(real) == 0o640
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_atomic(fifo, "through")
    reader.join(timeout=30)
    assert received == [b"through"] and stat.S_ISFIFO(fifo.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "link.txt", "real.txt"]


def test_an_output_that_cannot_be_written_is_named_before_writing(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder"):
        check_output(tmp_path)
    with pytest.raises(InputError, match=r"out.txt: the folder .*nodir does not exist"):
        write_atomic(tmp_path / "nodir" / "out.txt", "x")
    notes = tmp_path / "notes.txt"
    notes.write_text("keep")
    with pytest.raises(CheckpointError, match="is not a directory"):
        write_directory_atomic(notes, lambda d: write_atomic(d / "config.json", "{}"))
    assert notes.read_text() == "keep" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_link_to_a_missing_folder_is_named_by_that_folder(tmp_path: Path) -> None:
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "nowhere" / "x.txt")
    with pytest.raises(InputError, match=r"the folder .*nowhere does not exist"):
        write_atomic(tmp_path / "dangling.txt", "x")

