"""polyseq: a multilingual sequence-to-sequence toolkit on PyTorch.

Train encoder-decoder Transformers on parallel text, decode them with named strategies, translate
files and documents, and evaluate with sacrebleu.
"""

from polyseq.config import (
    ConfigError,
    DataConfig,
    ExperimentConfig,
    ModelConfig,
    TrainConfig,
    load_config,
    model_preset,
)
from polyseq.decoding.core import DecodeInput, DecodeResult, Hypothesis, decode, strategy_names
from polyseq.documents import (
    DocumentError,
    DocumentResult,
    check_preservation,
    translate_document,
    translate_file,
)
from polyseq.evaluate import score
from polyseq.model.checkpoint import CheckpointError, load_model
from polyseq.model.transformer import Memory, Seq2Seq
from polyseq.text.tokenizer import Tokenizer
from polyseq.train.loop import train
from polyseq.translator import InputError, Translator

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
    "decode",
    "load_config",
    "load_model",
    "model_preset",
    "score",
    "strategy_names",
    "train",
    "translate_document",
    "translate_file",
]
