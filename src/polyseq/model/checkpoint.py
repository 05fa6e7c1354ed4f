"""Model directories: config.json + model.safetensors + tokenizer files + metadata.json.

A directory is written whole into a temporary sibling and then renamed into place, so a crash never
leaves a half-written model. Loading uses safetensors and JSON only (no pickle), and every failure
names the file that is wrong.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from polyseq.config import ConfigError, ModelConfig, model_config_from_dict
from polyseq.files import new_directory, write_json_atomic
from polyseq.model.actions import build_model
from polyseq.model.transformer import Seq2Seq

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A model directory is missing, partial or corrupt."""


def write_directory_atomic(target: str | Path, fill: Callable[[Path], None]) -> Path:
    """Call `fill(tmp_dir)` and then move tmp_dir to `target`, replacing an older directory (the
    caller decides whether that may go: see `check_output_directory`)."""
    target = Path(target)
    if target.exists() and not target.is_dir():  # it would be set aside, then fail to go
        raise CheckpointError(f"{target} exists and is not a directory; choose another path")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = new_directory(target.parent, prefix=f".{target.name}.")
    try:
        fill(staging)
        _sync_tree(staging)
        if target.exists():
            retired = target.with_name(f".{target.name}.old")
            if retired.exists():
                shutil.rmtree(retired)
            os.replace(target, retired)
            os.replace(staging, target)
            shutil.rmtree(retired)
        else:
            os.replace(staging, target)
        _sync(target.parent)  # the rename itself
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _sync_tree(directory: Path) -> None:
    """Flush a filled directory to the disk before it is renamed into place: after a power cut,
    a renamed directory must not hold files that never reached the disk (empty or cut short)."""
    for path in sorted(directory.rglob("*"), reverse=True):  # a folder's files before the folder
        _sync(path)
    _sync(directory)


def _sync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def model_kind(directory: Path) -> str | None:
    """"polyseq", "ct2" or "hf" for a model directory of that kind, else None."""
    try:
        config = json.loads((directory / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    if config.get("architecture") == "polyseq-seq2seq":
        return "polyseq"
    if (directory / "model.bin").is_file():
        return "ct2"
    return "hf" if "model_type" in config else None


def check_output_directory(output: Path, inputs: Sequence[Path], kind: str, overwrite: bool) -> None:
    """Before a command writes a model directory of `kind` at `output`, which replaces whatever is
    there: refuse an input (or a folder holding one), a file, and a non-empty folder that is not a
    model of that kind; a model of that kind only with `overwrite`."""
    for source in inputs:
        if source.resolve().is_relative_to(output.resolve()):
            raise CheckpointError(f"the output {output} is or holds the input {source}; choose another path")
    if not output.exists():
        return
    if not output.is_dir():
        raise CheckpointError(f"the output {output} exists and is not a directory; choose another path")
    if not any(output.iterdir()):
        return
    if model_kind(output) != kind:
        raise CheckpointError(f"the output {output} is a folder with files in it, not a {kind} model "
                              "directory, and writing a model there would delete them; choose another path")
    if not overwrite:
        raise CheckpointError(f"the output {output} holds a {kind} model already: give --overwrite "
                              "(overwrite=True from Python) to replace it, or choose another path")


def recover_directory(target: str | Path) -> bool:
    """Tidy what a process killed inside `write_directory_atomic` left beside `target`: unfinished
    staging folders go, and a previous directory set aside (`.NAME.old`) with nothing yet in its
    place comes back. True when it came back."""
    target = Path(target)
    retired = target.with_name(f".{target.name}.old")
    for staging in target.parent.glob(f".{target.name}.*"):
        if staging != retired and staging.is_dir():
            shutil.rmtree(staging)
    if retired.is_dir() and not target.exists():
        os.replace(retired, target)
        return True
    if retired.is_dir():  # the new directory was in place before the kill
        shutil.rmtree(retired)
    return False


def model_config_dict(config: ModelConfig) -> dict[str, Any]:
    values = asdict(config)
    return {key: getattr(value, "value", value) for key, value in values.items()}


def save_model_files(directory: Path, model: Seq2Seq, metadata: dict[str, Any]) -> None:
    """Write config.json, model.safetensors and metadata.json into an existing directory."""
    write_json_atomic(directory / CONFIG_FILE, {
        "format_version": FORMAT_VERSION, "architecture": "polyseq-seq2seq",
        "model": model_config_dict(model.config),
    })
    weights = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
    if model.config.tie_embeddings:
        weights = {k: v for k, v in weights.items() if k != "output.weight"}
    save_file(weights, str(directory / WEIGHTS_FILE), metadata={"format": "pt"})
    # safetensors makes a private file: give it the mode config.json got from an ordinary write
    shutil.copymode(directory / CONFIG_FILE, directory / WEIGHTS_FILE)
    write_json_atomic(directory / METADATA_FILE, metadata)


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: not a complete polyseq model directory")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path} is corrupt (not valid JSON: {error})") from None


def load_model_config(directory: Path) -> ModelConfig:
    path = directory / CONFIG_FILE
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        hint = _foreign(directory, data)
        raise CheckpointError(f"{path} has no 'model' section: not a polyseq config{hint}")
    if data.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported format_version {data.get('format_version')!r}")
    try:
        return model_config_from_dict(data["model"])
    except (ConfigError, TypeError) as error:
        raise CheckpointError(f"{path}: invalid model config: {error}") from None


def load_model(directory: str | Path, device: str | torch.device = "cpu") -> Seq2Seq:
    """Build the model from config.json and fill it from model.safetensors."""
    directory = Path(directory)
    if not directory.is_dir():
        hint = ""
        parts = directory.parts
        if not directory.is_absolute() and len(parts) == 2 and not parts[0].startswith("."):  # org/name
            hint = ("; for a Hugging Face Hub model, import it first: "
                    f"`polyseq convert {directory.as_posix()} OUT`, then use OUT")
        raise CheckpointError(f"model directory {directory} does not exist{hint}")
    model = build_model(load_model_config(directory))
    path = directory / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: not a complete polyseq model directory")
    try:
        weights = load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is corrupt or truncated: {error}") from None
    expected = model.state_dict()
    if model.config.tie_embeddings:
        expected.pop("output.weight", None)
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match {directory / CONFIG_FILE}: "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    for name, tensor in weights.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(
                f"{path}: {name} has shape {tuple(tensor.shape)}, config expects "
                f"{tuple(expected[name].shape)}"
            )
    model.load_state_dict(weights, strict=False)
    return model.to(device).eval()


def _foreign(directory: Path, config: Any) -> str:
    """What to do with a model directory of another toolkit, for the error that refuses it."""
    vocabularies = ("shared_vocabulary.json", "shared_vocabulary.txt", "source_vocabulary.json")
    if (directory / "model.bin").is_file() and any((directory / name).is_file() for name in vocabularies):
        return ("; it is a CTranslate2 model, which polyseq cannot load: load the checkpoint it was "
                "converted from")
    if isinstance(config, dict) and "model_type" in config:
        return (f"; it is a Hugging Face checkpoint (model_type {config['model_type']!r}): import it with "
                "`polyseq convert --from hf DIR OUT` (polyseq.interop.import_hf), then load OUT")
    return ""


def load_metadata(directory: str | Path) -> dict[str, Any]:
    data = read_json(Path(directory) / METADATA_FILE)
    if not isinstance(data, dict):
        raise CheckpointError(f"{Path(directory) / METADATA_FILE} must hold a JSON object")
    return data


def average_weights(paths: list[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of several safetensors weight files (checkpoint averaging)."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    total: dict[str, torch.Tensor] = {}
    for path in paths:
        try:
            weights = load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{path} is corrupt or truncated: {error}") from None
        if total and weights.keys() != total.keys():
            raise CheckpointError(f"{path} holds other tensors than {paths[0]}")
        for name, tensor in weights.items():
            total[name] = total[name] + tensor.double() if name in total else tensor.double()
    return {name: (tensor / len(paths)).float() for name, tensor in total.items()}
