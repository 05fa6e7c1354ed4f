"""Atomic writes give their results the permissions a plain write would, so that a model or a
translated document can be read by whoever could read a file written the ordinary way."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from polyseq.config import ModelConfig
from polyseq.files import public_mode, write_atomic
from polyseq.model.checkpoint import save_model_files, write_directory_atomic
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


def test_public_mode_follows_the_umask() -> None:
    old = os.umask(0o077)
    try:
        assert public_mode() == 0o600 and public_mode(directory=True) == 0o700
    finally:
        os.umask(old)
