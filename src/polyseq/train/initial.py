"""`train.init_from`: a run that starts from another run's weights (pretrain, then fine-tune), or
from a model imported from Hugging Face (`polyseq convert`).

The new run takes the model directory's tokenizer too, so that every token id means what it meant
to the weights; only the weights carry over (the optimizer and the data start afresh). Weights
whose names or shapes differ from the new model's, or a run directory that already holds another
tokenizer, are refused with a message naming the difference.

An imported model keeps its own tokenizer and its own architecture: the run's tokenizer folder
gets its tokenizer files, its metadata (what an export to Hugging Face writes back) and its
config.json, whose [model] settings the run takes (dropout aside); polyseq.train.data reads them.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import torch

from polyseq.config import Actions, ConfigError, ExperimentConfig, ModelConfig
from polyseq.files import write_json_atomic
from polyseq.model.checkpoint import (
    CONFIG_FILE,
    METADATA_FILE,
    CheckpointError,
    load_metadata,
    load_model,
    load_model_config,
)
from polyseq.model.transformer import Seq2Seq
from polyseq.text.tokenizer import Tokenizer, TokenizerError

# settings that change no weight's name or shape, so that a fine-tuning run may set its own
FREE_SETTINGS = ("dropout", "attention_dropout")
# what an imported model's directories carry, and a model fine-tuned from it carries on
IMPORTED_METADATA = ("imported_from", "hf_config", "hf_generation_config", "tokenizer",
                     "suppressed_tokens", "suppressed_bias", "hf_files")


class InitError(ValueError):
    """train.init_from names a model the run cannot start from (the message says why)."""


def share_tokenizer(model_dir: Path, tokenizer_dir: Path, config: ExperimentConfig, log: Any = print) -> None:
    """Copy model_dir's tokenizer into a new run's tokenizer_dir; refuse a different one there,
    or one without a language of the run's data."""
    kind = _tokenizer_kind(model_dir)
    if kind == "none":
        raise InitError(f"train.init_from = {model_dir}: it was imported without its tokenizer; convert "
                        "it again from a directory that has the tokenizer files")
    if kind != "polyseq":
        _share_imported(model_dir, tokenizer_dir, config, log)
        return
    source = model_dir / "tokenizer.model"
    if (tokenizer_dir / METADATA_FILE).is_file():
        raise InitError(f"train.init_from = {model_dir}: this run's tokenizer ({tokenizer_dir}) is an "
                        "imported model's; start the run in an empty train.output_dir")
    if not source.is_file():
        raise InitError(f"train.init_from = {model_dir}: {source} is missing; give a polyseq model "
                        "directory (a run's best/ or last/)")
    _check_positions(model_dir, config)
    languages = config.data.languages
    missing = [lang for lang in languages if lang not in Tokenizer.load(model_dir).languages]
    if missing:
        raise InitError(f"train.init_from = {model_dir}: its tokenizer has no tag for "
                        f"{', '.join(missing)} (data.languages); its languages are "
                        f"{', '.join(Tokenizer.load(model_dir).languages)}")
    target = tokenizer_dir / "tokenizer.model"
    if target.is_file():
        if target.read_bytes() != source.read_bytes():
            raise InitError(f"train.init_from = {model_dir}: its vocabulary differs from this run's "
                            f"tokenizer ({target}); start the run in an empty train.output_dir to "
                            "take the model's tokenizer")
        return
    tokenizer_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    log(f"tokenizer: {model_dir}'s, for its weights")


def _check_positions(model_dir: Path, config: ExperimentConfig) -> None:
    """data.max_length against the positions of the model the run starts from."""
    try:
        positions = load_model_config(model_dir).max_positions
    except CheckpointError as error:
        raise InitError(f"train.init_from: {error}") from None
    if config.data.max_length > positions:
        raise InitError(f"train.init_from = {model_dir}: data.max_length {config.data.max_length} is more "
                        f"than the model's max_positions {positions}: a training sentence would not fit "
                        f"it; set data.max_length to {positions} or less")


def _share_imported(model_dir: Path, tokenizer_dir: Path, config: ExperimentConfig, log: Any) -> None:
    """An imported model's tokenizer files, metadata and config.json into tokenizer_dir, once every
    direction of the run is checked to be one the model can be told to translate."""
    from polyseq.translator import load_text_tokenizer

    where = f"train.init_from = {model_dir}"
    others = sorted(name for name, weight in config.train.objectives.items()
                    if weight > 0 and name != "translation")
    if others or config.model.actions is not Actions.NONE:
        what = (f"train.objectives {', '.join(others)}" if others
                else f"model.actions = {config.model.actions.value}")
        raise InitError(f"{where}: an imported model fine-tunes on translation alone, not with {what} "
                        "(they need polyseq's own tokenizer)")
    _check_positions(model_dir, config)
    try:
        tokenizer = load_text_tokenizer(model_dir)
        for src, tgt in config.data.all_directions():
            tokenizer.framing(src, tgt)
        with_imported_architecture(config, load_model_config(model_dir))  # its [model] with this run
    except (TokenizerError, CheckpointError, ConfigError) as error:
        raise InitError(f"{where}: {error}") from None
    metadata = load_metadata(model_dir)
    inherited = {key: metadata[key] for key in IMPORTED_METADATA if key in metadata}
    files = inherited.get("hf_files", [])
    marker = tokenizer_dir / METADATA_FILE  # written last: a folder without it was never complete
    if marker.is_file() or (tokenizer_dir / "tokenizer.model").is_file():
        same = marker.is_file() and load_metadata(tokenizer_dir).get("tokenizer") == inherited["tokenizer"]
        if not same or any((tokenizer_dir / n).read_bytes() != (model_dir / n).read_bytes() for n in files):
            raise InitError(f"{where}: its tokenizer differs from this run's ({tokenizer_dir}); start the "
                            "run in an empty train.output_dir to take the model's tokenizer")
        return
    tokenizer_dir.mkdir(parents=True, exist_ok=True)
    for name in [CONFIG_FILE, *files]:
        shutil.copyfile(model_dir / name, tokenizer_dir / name)
    write_json_atomic(marker, {**inherited, "fine_tuned_from": str(model_dir.resolve())})
    log(f"tokenizer: {model_dir}'s ({inherited['tokenizer']['kind']}), and its [model] settings")


def with_imported_architecture(config: ExperimentConfig,
                               architecture: ModelConfig | None) -> ExperimentConfig:
    """A run fine-tuning an imported model trains that model's architecture; its own [model]
    section chooses the dropout alone."""
    if architecture is None:
        return config
    free = {name: getattr(config.model, name) for name in FREE_SETTINGS}
    return dataclasses.replace(config, model=dataclasses.replace(architecture, **free))


def _tokenizer_kind(model_dir: Path) -> str:
    """"polyseq", or the family whose tokenizer an imported model keeps (marian, nllb, ...)."""
    try:
        info = load_metadata(model_dir).get("tokenizer") or {}
    except CheckpointError:  # no metadata: the tokenizer check below names what is missing
        return "polyseq"
    return str(info.get("kind", "polyseq"))


def initial_weights(model_dir: Path, model: Seq2Seq) -> dict[str, torch.Tensor]:
    """model_dir's weights, checked against `model` (the run's freshly built one)."""
    try:
        config = load_model_config(model_dir)
    except CheckpointError as error:
        raise InitError(f"train.init_from: {error}") from None
    differ = [f"{f.name} {getattr(config, f.name)!r} there, {getattr(model.config, f.name)!r} here"
              for f in dataclasses.fields(config)
              if f.name not in FREE_SETTINGS and getattr(config, f.name) != getattr(model.config, f.name)]
    if differ:
        raise InitError(f"train.init_from = {model_dir}: the model settings differ: {'; '.join(differ)}; "
                        "fine-tune with the [model] settings of the model you start from")
    try:
        weights = load_model(model_dir).state_dict()
    except CheckpointError as error:
        raise InitError(f"train.init_from: {error}") from None
    for name, tensor in model.state_dict().items():
        if name in weights and weights[name].shape != tensor.shape:  # settings agree, so a bug
            raise InitError(f"train.init_from = {model_dir}: {name} has shape {tuple(weights[name].shape)}, "
                            f"this model's is {tuple(tensor.shape)}")
    return weights
