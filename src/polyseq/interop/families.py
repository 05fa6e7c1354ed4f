"""The Hugging Face encoder-decoder families polyseq reads and writes, and their architectures.

Each family is one fixed combination of polyseq's ModelConfig variants; `config_from_hf` reads an
HF config.json into a ModelConfig, `family_of` finds the HF class that computes what a ModelConfig
computes. Neither needs transformers installed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from polyseq.config import (
    Actions,
    Activation,
    ConfigError,
    EmbeddingNorm,
    EmbeddingScale,
    ModelConfig,
    NormPlacement,
    OutputBias,
    Positions,
)


class Family(str, enum.Enum):
    MARIAN = "marian"  # OPUS-MT
    PEGASUS = "pegasus"  # pre-norm Marian: where polyseq's own models go
    M2M_100 = "m2m_100"  # M2M-100 and NLLB
    BART = "bart"
    MBART = "mbart"  # mBART-25 and mBART-50


@dataclass(frozen=True)
class Traits:
    norm: NormPlacement
    positions: Positions
    embedding_norm: EmbeddingNorm
    halves_layout: bool  # sinusoidal sin|cos halves: weights are permuted at the border
    logits_bias: bool  # the HF class has final_logits_bias
    default_scale: bool  # scale_embedding when config.json does not say
    model_class: str
    config_class: str

    def position_offset(self, pad_id: int) -> int:
        if self.positions is Positions.LEARNED:
            return 2  # BART's "offset the embedding ids by 2" hack
        if self.positions is Positions.SINUSOIDAL_FAIRSEQ:
            return pad_id + 1  # fairseq's positions start after the padding index
        return 0


TRAITS: dict[Family, Traits] = {
    Family.MARIAN: Traits(NormPlacement.POST, Positions.SINUSOIDAL, EmbeddingNorm.NONE, True, True, False,
                          "MarianMTModel", "MarianConfig"),
    Family.PEGASUS: Traits(NormPlacement.PRE, Positions.SINUSOIDAL, EmbeddingNorm.NONE, True, True, False,
                           "PegasusForConditionalGeneration", "PegasusConfig"),
    Family.M2M_100: Traits(NormPlacement.PRE, Positions.SINUSOIDAL_FAIRSEQ, EmbeddingNorm.NONE, False, False,
                           True, "M2M100ForConditionalGeneration", "M2M100Config"),
    Family.BART: Traits(NormPlacement.POST, Positions.LEARNED, EmbeddingNorm.LAYER_NORM, False, True, False,
                        "BartForConditionalGeneration", "BartConfig"),
    Family.MBART: Traits(NormPlacement.PRE, Positions.LEARNED, EmbeddingNorm.LAYER_NORM, False, True, False,
                         "MBartForConditionalGeneration", "MBartConfig"),
}

_HF_ACTIVATIONS = {"relu": Activation.RELU, "gelu": Activation.GELU, "swish": Activation.SWISH,
                   "silu": Activation.SWISH}


class InteropError(ValueError):
    """A checkpoint or model that cannot be converted, with what to do about it."""


def family_from_hf(hf: dict[str, Any], where: str) -> Family:
    model_type = str(hf.get("model_type", ""))
    try:
        return Family(model_type)
    except ValueError:
        known = ", ".join(f.value for f in Family)
        raise InteropError(f"{where}: model_type {model_type!r} is not supported (supported: {known})") \
            from None


def _same(hf: dict[str, Any], a: str, b: str, where: str) -> int:
    if a in hf and b in hf and hf[a] != hf[b]:
        raise InteropError(f"{where}: {a}={hf[a]} differs from {b}={hf[b]}; polyseq uses one value for both")
    return int(hf[a])


def config_from_hf(hf: dict[str, Any], family: Family, has_bias: bool, where: str) -> ModelConfig:
    """polyseq's ModelConfig for an HF config.json of `family`; `has_bias` when the checkpoint's
    final_logits_bias is not all zero (a zero bias is left out, so that round trips stay exact)."""
    traits = TRAITS[family]
    activation = str(hf.get("activation_function", "gelu"))
    if activation not in _HF_ACTIVATIONS:
        raise InteropError(f"{where}: activation_function {activation!r} is not supported "
                           f"(supported: {', '.join(_HF_ACTIVATIONS)})")
    if family is Family.MARIAN and not hf.get("share_encoder_decoder_embeddings", True):
        raise InteropError(f"{where}: separate source and target vocabularies "
                           "(share_encoder_decoder_embeddings=false) are not supported")
    if hf.get("decoder_vocab_size") not in (None, hf.get("vocab_size")):
        raise InteropError(f"{where}: decoder_vocab_size differs from vocab_size; not supported")
    pad_id = int(hf.get("pad_token_id", 1))
    scale = bool(hf.get("scale_embedding", traits.default_scale))
    try:
        return ModelConfig(
            vocab_size=int(hf["vocab_size"]), d_model=int(hf["d_model"]),
            encoder_layers=int(hf["encoder_layers"]), decoder_layers=int(hf["decoder_layers"]),
            heads=_same(hf, "encoder_attention_heads", "decoder_attention_heads", where),
            ffn_dim=_same(hf, "encoder_ffn_dim", "decoder_ffn_dim", where),
            dropout=float(hf.get("dropout", 0.1)), attention_dropout=float(hf.get("attention_dropout", 0.0)),
            max_positions=int(hf.get("max_position_embeddings", 1024)),
            tie_embeddings=bool(hf.get("tie_word_embeddings", True)),
            norm=traits.norm, activation=_HF_ACTIVATIONS[activation], pad_id=pad_id,
            positions=traits.positions, position_offset=traits.position_offset(pad_id),
            embedding_scale=EmbeddingScale.SQRT_D_MODEL if scale else EmbeddingScale.NONE,
            embedding_norm=traits.embedding_norm,
            output_bias=OutputBias.BIAS if has_bias else OutputBias.NONE,
        )
    except KeyError as error:
        raise InteropError(f"{where}: config.json has no {error.args[0]!r}") from None
    except ConfigError as error:
        raise InteropError(f"{where}: {error}") from None


def family_of(config: ModelConfig) -> Family:
    """The HF family that computes exactly what `config` computes; InteropError when none does."""
    if config.language_embedding.value != "none":
        raise InteropError(f"no Hugging Face architecture adds target-language vectors "
                           f"(model.language_embedding={config.language_embedding.value})")
    if config.actions is not Actions.NONE:
        raise InteropError(f"this model has a {config.actions.value} output layer (SKIP/COPY/GEN over "
                           "the source), which no Hugging Face architecture has; it runs in polyseq only")
    for family, traits in TRAITS.items():
        if (traits.norm, traits.positions, traits.embedding_norm) != (
                config.norm, config.positions, config.embedding_norm):
            continue
        if config.position_offset != traits.position_offset(config.pad_id):
            continue
        if config.output_bias is OutputBias.BIAS and not traits.logits_bias:
            continue
        return family
    raise InteropError(
        f"no Hugging Face architecture matches this model (norm={config.norm.value}, "
        f"positions={config.positions.value}, position_offset={config.position_offset}, "
        f"embedding_norm={config.embedding_norm.value}, output_bias={config.output_bias.value})"
    )


def hf_config_values(config: ModelConfig, family: Family) -> dict[str, Any]:
    """The architecture fields of an HF config for `config` (ids and generation settings apart)."""
    activation = {Activation.RELU: "relu", Activation.GELU: "gelu", Activation.SWISH: "swish"}
    values: dict[str, Any] = dict(
        vocab_size=config.vocab_size, d_model=config.d_model,
        encoder_layers=config.encoder_layers, decoder_layers=config.decoder_layers,
        encoder_attention_heads=config.heads, decoder_attention_heads=config.heads,
        encoder_ffn_dim=config.ffn_dim, decoder_ffn_dim=config.ffn_dim,
        max_position_embeddings=config.max_positions, activation_function=activation[config.activation],
        scale_embedding=config.embedding_scale is EmbeddingScale.SQRT_D_MODEL,
        tie_word_embeddings=config.tie_embeddings, dropout=config.dropout,
        attention_dropout=config.attention_dropout, activation_dropout=0.0,
        encoder_layerdrop=0.0, decoder_layerdrop=0.0, pad_token_id=config.pad_id,
    )
    if family is Family.MARIAN:
        values["decoder_vocab_size"] = config.vocab_size
    # BART-era fields that transformers ignores but CTranslate2's BART, mBART and Pegasus converters
    # read (without them they fail): what the model computes, for every family
    values |= {"normalize_before": config.norm is NormPlacement.PRE,
               "normalize_embedding": config.embedding_norm is not EmbeddingNorm.NONE}
    return values
