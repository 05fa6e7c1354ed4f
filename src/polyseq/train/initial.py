"""`train.init_from`: a run that starts from another run's weights (pretrain, then fine-tune).

The new run takes the model directory's tokenizer too, so that every token id means what it meant
to the weights; only the weights carry over (the optimizer and the data start afresh). Weights
whose names or shapes differ from the new model's, or a run directory that already holds another
tokenizer, are refused with a message naming the difference.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from polyseq.model.checkpoint import CheckpointError, load_metadata, load_model, load_model_config
from polyseq.model.transformer import Seq2Seq
from polyseq.text.tokenizer import Tokenizer

# settings that change no weight's name or shape, so that a fine-tuning run may set its own
FREE_SETTINGS = {"dropout", "attention_dropout"}


class InitError(ValueError):
    """train.init_from names a model the run cannot start from (the message says why)."""


def share_tokenizer(model_dir: Path, tokenizer_dir: Path, languages: Sequence[str], log: Any = print) -> None:
    """Copy model_dir's tokenizer into a new run's tokenizer_dir; refuse a different one there,
    or one without a language of the run's data."""
    source = model_dir / "tokenizer.model"
    kind = _tokenizer_kind(model_dir)
    if kind != "polyseq":
        raise InitError(f"train.init_from = {model_dir}: a model imported with its own {kind} tokenizer "
                        "cannot be fine-tuned yet: polyseq trains with its own SentencePiece tokenizer "
                        "(a run's best/ or last/)")
    if not source.is_file():
        raise InitError(f"train.init_from = {model_dir}: {source} is missing; give a polyseq model "
                        "directory (a run's best/ or last/)")
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
