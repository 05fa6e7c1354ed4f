"""Checkpoint averaging: the element-wise mean of the weights of model directories that share an
architecture and a tokenizer (typically the last few checkpoints of one run, which the mean of
smooths into a better model than any of them)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import torch

from polyseq.model.checkpoint import (
    CONFIG_FILE,
    METADATA_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    check_output_directory,
    load_metadata,
    load_model,
    load_model_config,
    model_config_dict,
    save_model_files,
    write_directory_atomic,
)

# what a model directory holds besides its tokenizer files (last/ also holds the trainer's state,
# which belongs to that run alone)
OWN_FILES = {CONFIG_FILE, WEIGHTS_FILE, METADATA_FILE, "trainer.pt"}


def average_models(directories: Sequence[str | Path], output: str | Path, *,
                   overwrite: bool = False) -> Path:
    """Write into `output` a model directory whose weights are the mean of `directories`' (in
    float64, then their own type), with the first one's tokenizer and metadata (a polyseq model
    already at `output` is replaced only with `overwrite`; other files never)."""
    paths, output = [Path(d) for d in directories], Path(output)
    if not paths:
        raise CheckpointError("no checkpoints to average: give one model directory or more")
    check_output_directory(output, paths, "polyseq", overwrite)
    for path in paths:
        if not path.is_dir():
            raise CheckpointError(f"model directory {path} does not exist")
    first = paths[0]
    shared = tokenizer_files(first)
    total: dict[str, torch.Tensor] = {}
    types: dict[str, torch.dtype] = {}
    for path in paths:
        _check_compatible(first, path, shared)
        for name, tensor in load_model(path).state_dict().items():  # shapes checked against config.json
            total[name] = total[name] + tensor.double() if name in total else tensor.double()
            types.setdefault(name, tensor.dtype)
    model = load_model(first)
    model.load_state_dict({name: (tensor / len(paths)).to(types[name]) for name, tensor in total.items()})
    metadata = {**load_metadata(first), "averaged_from": [str(path) for path in paths]}

    def fill(folder: Path) -> None:
        for name in shared:
            shutil.copyfile(first / name, folder / name)
        save_model_files(folder, model, metadata)

    return write_directory_atomic(output, fill)


def tokenizer_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_file() and p.name not in OWN_FILES)


def _check_compatible(first: Path, other: Path, shared: list[str]) -> None:
    """Same architecture and the very same tokenizer, or an error that says which differ."""
    if other == first:
        return
    mine, theirs = model_config_dict(load_model_config(first)), model_config_dict(load_model_config(other))
    differ = [f"{key} {mine.get(key)} vs {theirs.get(key)}" for key in sorted(mine.keys() | theirs.keys())
              if mine.get(key) != theirs.get(key)]
    if differ:
        raise CheckpointError(f"{first} and {other} have different shapes ({'; '.join(differ)}): "
                              "only models of one architecture can be averaged")
    files = tokenizer_files(other)
    changed = [name for name in shared
               if name in files and (first / name).read_bytes() != (other / name).read_bytes()]
    if files != shared or changed:
        which = ", ".join(changed or sorted(set(files) ^ set(shared)))
        raise CheckpointError(f"{first} and {other} have different tokenizers ({which}): their token "
                              "ids do not match, so their weights cannot be averaged")
