"""Export polyseq models to CTranslate2, through the Hugging Face export and CTranslate2's own
TransformersConverter (so CTranslate2 reads exactly what transformers would load).

CTranslate2 takes tokens as strings: `tokens(ids)` and `ids(tokens)` translate between polyseq ids
and the converted model's vocabulary, which is polyseq's vocabulary in id order.
"""

from __future__ import annotations

import enum
import json
import tempfile
from pathlib import Path
from typing import Any

from polyseq.interop.families import Family, InteropError, family_of
from polyseq.interop.hf import export_hf
from polyseq.model.checkpoint import (
    check_output_directory,
    load_metadata,
    load_model_config,
    write_directory_atomic,
)


class Quantization(str, enum.Enum):
    FLOAT32 = "float32"
    INT8 = "int8"
    INT8_FLOAT32 = "int8_float32"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"


def export_ct2(model_dir: str | Path, output: str | Path,
               quantization: Quantization = Quantization.FLOAT32, *, overwrite: bool = False) -> Path:
    """Write the polyseq model in `model_dir` as a CTranslate2 model directory at `output` (a
    CTranslate2 model already there is replaced only with `overwrite`; other files never).

    The weights are stored as `quantization`; CTranslate2 can also quantize a float32 model when it
    loads it (`compute_type="int8"`), which is what the benchmark does."""
    try:
        import ctranslate2.converters  # noqa: F401  (used by _converter)
    except ImportError:
        raise InteropError("exporting to CTranslate2 needs ctranslate2: pip install ctranslate2") from None
    model_dir, quantized = Path(model_dir), Quantization(quantization).value
    check_output_directory(Path(output), [model_dir], "ct2", overwrite)
    kind = (load_metadata(model_dir).get("tokenizer") or {"kind": "polyseq"})["kind"]
    if kind == "none":  # the converter builds CTranslate2's vocabulary from the tokenizer
        raise InteropError(f"{model_dir} was imported without its tokenizer, and CTranslate2 needs the "
                           "tokenizer; convert the checkpoint again with the tokenizer (without "
                           "--no-tokenizer), or export it to hf instead")
    own_tokenizer = kind == "polyseq"
    family = family_of(load_model_config(model_dir))
    if own_tokenizer and family is Family.MARIAN:
        # CTranslate2 starts a Marian decoder from a zero vector (Marian's <pad>), not from a token
        raise InteropError("CTranslate2 starts Marian-family decoders from a zero embedding, but this "
                           "post-norm polyseq model starts from a language tag; export it to hf instead")
    with tempfile.TemporaryDirectory(prefix="polyseq-ct2-") as staging:
        hf_dir = export_hf(model_dir, Path(staging) / "hf")

        def fill(directory: Path) -> None:
            try:
                _converter(hf_dir).convert(str(directory), quantization=quantized, force=True)
            except (AttributeError, KeyError, ValueError, RuntimeError) as error:
                # an InteropError, so that the CLI reports it in one line like every other refusal
                raise InteropError(f"CTranslate2 cannot convert this {family.value} model: "
                                   f"{type(error).__name__}: {error}; export it to hf instead") from error
            if own_tokenizer:
                _start_from_prefix(directory)

        return write_directory_atomic(output, fill)


def _converter(hf_dir: Path) -> Any:
    """CTranslate2's own TransformersConverter, given fairseq position tables that start where
    transformers starts them (the converter's hook for loading the model; its loaders unchanged)."""
    from ctranslate2.converters import TransformersConverter

    class Converter(TransformersConverter):
        def load_model(self, model_class: Any, path: str, **kwargs: Any) -> Any:
            model = super().load_model(model_class, path, **kwargs)
            for module in model.modules():
                if type(module).__name__ == "M2M100SinusoidalPositionalEmbedding":
                    _number_from_padding(module)
            return model

    return Converter(str(hf_dir))


def _number_from_padding(module: Any) -> None:
    """transformers numbers fairseq positions (M2M-100, NLLB) from padding_idx + 1, but CTranslate2's
    M2M100Loader reads the table from row `module.offset`, which transformers fixes at 2: right for
    fairseq's <pad> = 1, one row off for polyseq's <pad> = 0. Start the table where the numbering
    starts (and make it long enough), so that CTranslate2 gets the positions transformers uses."""
    start = module.padding_idx + 1
    module.make_weights(module.num_positions + start, module.embedding_dim, module.padding_idx)
    module.offset = start


def _start_from_prefix(directory: Path) -> None:
    """polyseq decoders start with the target tag: no fixed start token, the caller passes the tag
    as `target_prefix` (CTranslate2 then starts from the prefix's first token, as for mBART-25)."""
    path = directory / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["decoder_start_token"] = None
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def vocabulary(ct2_dir: str | Path) -> list[str]:
    """The converted model's target vocabulary, one token per id."""
    directory = Path(ct2_dir)
    for name in ("shared_vocabulary.json", "target_vocabulary.json"):
        if (directory / name).is_file():
            return list(json.loads((directory / name).read_text(encoding="utf-8")))
    raise InteropError(f"{directory} has no shared_vocabulary.json or target_vocabulary.json")
