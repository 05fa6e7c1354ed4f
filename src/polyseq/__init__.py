"""polyseq: a multilingual sequence-to-sequence toolkit on PyTorch.

Train encoder-decoder Transformers on parallel text, decode them with named strategies, translate
files and documents, and evaluate with sacrebleu.
"""

import warnings
from typing import Any

from polyseq.config import (
    ConfigError,
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    load_config,
    model_preset,
)
from polyseq.decoding import generate, strategy_names
from polyseq.decoding.core import DecodeInput, DecodeResult, Hypothesis
from polyseq.documents import (
    DocumentError,
    DocumentResult,
    check_preservation,
    translate_document,
    translate_document_file,
)
from polyseq.evaluate import score_translations
from polyseq.files import InputError
from polyseq.model.checkpoint import CheckpointError, load_model
from polyseq.model.transformer import Memory, Seq2Seq
from polyseq.text.tokenizer import Tokenizer
from polyseq.train.loop import train
from polyseq.translator import Translator

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataConfig",
    "DecodeInput",
    "DecodeResult",
    "DocumentError",
    "DocumentResult",
    "ExperimentConfig",
    "Hypothesis",
    "InputError",
    "Memory",
    "ModelConfig",
    "Seq2Seq",
    "Tokenizer",
    "TrainConfig",
    "Translator",
    "check_preservation",
    "generate",
    "load_config",
    "load_model",
    "model_preset",
    "score_translations",
    "strategy_names",
    "train",
    "translate_document",
    "translate_document_file",
]

# Old names, kept for one release: each meant two things (see the new names' docstrings).
_RENAMED = {"decode": generate, "score": score_translations, "translate_file": translate_document_file}


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        new = _RENAMED[name]
        warnings.warn(f"polyseq.{name} is deprecated; use polyseq.{new.__name__}", DeprecationWarning,
                      stacklevel=2)
        return new
    raise AttributeError(f"module 'polyseq' has no attribute {name!r}")
