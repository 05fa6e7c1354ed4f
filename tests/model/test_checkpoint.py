"""Model directories: written atomically, loaded without pickle, and every broken file named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from polyseq.model.checkpoint import CheckpointError, load_model, write_directory_atomic
from polyseq.text.tokenizer import TokenizerError
from polyseq.translator import Translator


@pytest.fixture
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def test_round_trip_gives_identical_weights(model_copy: Path, tmp_path: Path) -> None:
    from polyseq.model.checkpoint import save_model_files

    model = load_model(model_copy)
    again = write_directory_atomic(tmp_path / "again",
                                   lambda d: save_model_files(d, model, {"note": "copy"}))
    reloaded = load_model(again)
    for (name, a), (_, b) in zip(model.state_dict().items(), reloaded.state_dict().items(),
                                 strict=True):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors", "metadata.json"])
def test_a_missing_file_is_named(model_copy: Path, missing: str) -> None:
    (model_copy / missing).unlink()
    with pytest.raises(CheckpointError, match=missing.replace(".", r"\.") + " is missing"):
        Translator.load(model_copy)


def test_a_truncated_weights_file_is_named(model_copy: Path) -> None:
    weights = model_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"model\.safetensors is corrupt"):
        load_model(model_copy)


def test_a_corrupt_config_is_named(model_copy: Path) -> None:
    (model_copy / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointError, match=r"config\.json is corrupt"):
        load_model(model_copy)


def test_weights_that_do_not_fit_the_config_are_named(model_copy: Path) -> None:
    config = json.loads((model_copy / "config.json").read_text())
    config["model"]["ffn_dim"] *= 2
    (model_copy / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(CheckpointError, match="config expects"):
        load_model(model_copy)


def test_a_corrupt_tokenizer_is_named(model_copy: Path) -> None:
    (model_copy / "tokenizer.model").write_bytes(b"garbage")
    with pytest.raises(TokenizerError, match=r"tokenizer\.model"):
        Translator.load(model_copy)


def test_a_failed_write_leaves_the_old_directory(model_copy: Path) -> None:
    before = sorted(p.name for p in model_copy.iterdir())

    def fail(directory: Path) -> None:
        (directory / "partial").write_text("x")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_directory_atomic(model_copy, fail)
    assert sorted(p.name for p in model_copy.iterdir()) == before
    assert [p.name for p in model_copy.parent.iterdir()] == ["model"]


def test_a_written_directory_reaches_the_disk_before_it_is_renamed_into_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file and folder is fsynced while it is still the staging directory, and the parent
    after the rename: a power cut leaves the old directory or the whole new one."""
    import os

    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor: int) -> None:
        events.append(f"sync {os.readlink(f'/proc/self/fd/{descriptor}')}")
        real_fsync(descriptor)

    def replace(source: str | Path, destination: str | Path) -> None:
        events.append(f"rename {source} -> {destination}")
        real_replace(source, destination)

    def fill(directory: Path) -> None:
        (directory / "sub").mkdir()
        (directory / "sub" / "weights").write_bytes(b"w" * 1000)
        (directory / "config.json").write_text("{}")

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_directory_atomic(tmp_path / "model", fill)
    rename = next(i for i, event in enumerate(events) if event.startswith("rename"))
    staging = events[rename].split()[1]
    synced = {event.removeprefix("sync ") for event in events[:rename]}
    assert synced == {staging, f"{staging}/sub", f"{staging}/sub/weights", f"{staging}/config.json"}
    assert events[rename + 1:] == [f"sync {tmp_path}"]
