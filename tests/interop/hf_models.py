"""Tiny randomly initialised Hugging Face models of every supported family, built by transformers
inside the tests (nothing is downloaded), and helpers to decode them with both libraries."""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from polyseq.config import (
    Activation,
    EmbeddingNorm,
    EmbeddingScale,
    ModelConfig,
    NormPlacement,
    OutputBias,
    Positions,
)
from polyseq.interop.families import Family
from polyseq.model.checkpoint import load_metadata, load_model, save_model_files, write_directory_atomic
from polyseq.model.transformer import Seq2Seq

transformers = pytest.importorskip(
    "transformers", reason="transformers is not installed (pip install 'polyseq[hf]'): interop tests need it"
)

VOCAB = 96
LAYERS = dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
              decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64,
              max_position_embeddings=64, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
              encoder_layerdrop=0.0, decoder_layerdrop=0.0, init_std=0.25, forced_eos_token_id=None)


@dataclass(frozen=True)
class Spec:
    """One family's configuration class, model class, special ids and the variants it exercises."""

    config_class: str
    model_class: str
    values: dict[str, Any]
    prefix: tuple[int, ...]  # the decoder start the tests use (a language code where it has one)

    @property
    def eos(self) -> int:
        return int(self.values["eos_token_id"])

    @property
    def pad(self) -> int:
        return int(self.values["pad_token_id"])


SPECS = {
    # OPUS-MT: pad is the last id and starts the decoder, swish, scaled embeddings, logits bias
    "marian": Spec("MarianConfig", "MarianMTModel",
                   dict(pad_token_id=VOCAB - 1, eos_token_id=0, decoder_start_token_id=VOCAB - 1,
                        activation_function="swish", scale_embedding=True), (VOCAB - 1,)),
    # M2M-100 / NLLB: pre-norm, fairseq sinusoids after the padding index, </s> __tgt__ start
    "m2m_100": Spec("M2M100Config", "M2M100ForConditionalGeneration",
                    dict(pad_token_id=1, eos_token_id=2, bos_token_id=0, decoder_start_token_id=2,
                         activation_function="relu", scale_embedding=True), (2, VOCAB - 3)),
    # BART: post-norm, learned positions (offset 2), embedding layer norm, unscaled embeddings
    "bart": Spec("BartConfig", "BartForConditionalGeneration",
                 dict(pad_token_id=1, eos_token_id=2, bos_token_id=0, decoder_start_token_id=2,
                      activation_function="gelu", scale_embedding=False), (2,)),
    # mBART: pre-norm with final norms, learned positions, embedding layer norm, language start
    "mbart": Spec("MBartConfig", "MBartForConditionalGeneration",
                  dict(pad_token_id=1, eos_token_id=2, bos_token_id=0, decoder_start_token_id=VOCAB - 2,
                       activation_function="gelu", scale_embedding=True), (VOCAB - 2,)),
    # Pegasus: pre-norm Marian, the architecture polyseq's own models export to
    "pegasus": Spec("PegasusConfig", "PegasusForConditionalGeneration",
                    dict(pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
                         activation_function="relu", scale_embedding=True), (0,)),
}
FAMILIES = list(SPECS)


def _perturb(model: torch.nn.Module, spec: Spec, seed: int) -> None:
    """Random LayerNorm parameters and logits bias: HF starts them at 1, 0 and 0, which would hide
    mapping mistakes."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.add_(0.2 * torch.randn(module.weight.shape, generator=generator))
                module.bias.add_(0.2 * torch.randn(module.bias.shape, generator=generator))
        bias = getattr(model, "final_logits_bias", None)
        if bias is not None:
            bias.copy_(0.5 * torch.randn(bias.shape, generator=generator))
        model.get_input_embeddings().weight[spec.pad].zero_()


def _boost_eos(model: torch.nn.Module, spec: Spec, amount: float) -> None:
    """Raise EOS's logit by about `amount` (M2M-100 has no logits bias: move the final norm's output
    towards EOS's embedding instead)."""
    with torch.no_grad():
        bias = getattr(model, "final_logits_bias", None)
        if bias is not None:
            bias[0, spec.eos] += amount
        else:
            row = model.get_input_embeddings().weight[spec.eos]
            model.model.decoder.layer_norm.bias.add_(amount * row / row.dot(row))


def _calibrate_eos(model: torch.nn.Module, spec: Spec) -> None:
    """Random models repeat one token forever or stop at once; raise EOS in steps until a probe batch
    ends at several different lengths, so that the parity tests see hypotheses stop and run on."""
    src = source_batch(spec, seed=5, rows=4)  # the batch the decoding tests use
    best, best_amount = -1, 0.0
    for step in range(16):
        lengths = [len(row) for beams in (1, 4) for row in hf_generate(model, spec, src, 24, beams)]
        spread = len({n for n in lengths if 0 < n < 24}) + min(lengths.count(24), 1)
        if spread > best:
            best, best_amount = spread, 0.5 * step
        _boost_eos(model, spec, 0.5)
    _boost_eos(model, spec, best_amount - 0.5 * 16)


def make_hf_model(family: str, directory: Path, seed: int = 0, **overrides: Any) -> torch.nn.Module:
    """A tiny random `family` model saved with save_pretrained into `directory`."""
    spec = SPECS[family]
    torch.manual_seed(seed)
    config = getattr(transformers, spec.config_class)(vocab_size=VOCAB, **{**LAYERS, **spec.values,
                                                                             **overrides})
    model = getattr(transformers, spec.model_class)(config).eval()
    _perturb(model, spec, seed)
    _calibrate_eos(model, spec)
    model.save_pretrained(directory)
    return model


def source_batch(spec: Spec, seed: int = 1, rows: int = 3, length: int = 9) -> torch.Tensor:
    """Right-padded source ids that avoid the special ids (rows of different lengths)."""
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(4, VOCAB - 4, (rows, length), generator=generator)
    src[:, -1] = spec.eos
    for row in range(1, rows):
        cut = max(2, length - 3 * row)
        src[row, cut - 1] = spec.eos
        src[row, cut:] = spec.pad
    return src


def hf_generate(model: torch.nn.Module, spec: Spec, src: torch.Tensor, max_new: int,
                beams: int = 1) -> list[list[int]]:
    """transformers' greedy or beam output after the prefix, cut at the first EOS."""
    prefix = torch.tensor([spec.prefix] * src.shape[0])
    with torch.no_grad():
        # transformers prepends decoder_start_token_id unless the prefix starts with it
        out = model.generate(input_ids=src, attention_mask=src != spec.pad, decoder_input_ids=prefix,
                             decoder_start_token_id=spec.prefix[0], do_sample=False, num_beams=beams,
                             early_stopping=True, length_penalty=1.0,
                             max_new_tokens=max_new, forced_eos_token_id=None, forced_bos_token_id=None,
                             num_return_sequences=1)
    rows = []
    for sequence in out[:, len(spec.prefix):].tolist():
        rows.append(sequence[: sequence.index(spec.eos)] if spec.eos in sequence else sequence)
    return rows


def polyseq_generate(model: Any, spec: Spec, src: torch.Tensor, max_new: int, strategy: str = "greedy",
                     **settings: Any) -> list[list[int]]:
    from polyseq.decoding import generate
    from polyseq.decoding.core import DecodeInput, LengthLimit

    prefix = torch.tensor([spec.prefix] * src.shape[0])
    inputs = DecodeInput(src, prefix, eos_id=spec.eos, pad_id=spec.pad)
    result = generate(model, inputs, strategy, max_length=LengthLimit(0.0, max_new), **settings)
    return [list(h.tokens) for h in result.best()]


LEARNED = dict(positions=Positions.LEARNED, position_offset=2, embedding_norm=EmbeddingNorm.LAYER_NORM)
VARIANTS = {  # a polyseq variant -> the family it must export to
    "pre_sinusoidal": ({}, Family.PEGASUS),
    "post_sinusoidal": (dict(norm=NormPlacement.POST, activation=Activation.SWISH,
                             output_bias=OutputBias.BIAS), Family.MARIAN),
    "fairseq_sinusoidal": (dict(positions=Positions.SINUSOIDAL_FAIRSEQ, position_offset=1), Family.M2M_100),
    "fairseq_untied": (dict(positions=Positions.SINUSOIDAL_FAIRSEQ, position_offset=1, tie_embeddings=False),
                       Family.M2M_100),
    "post_learned": (dict(norm=NormPlacement.POST, embedding_scale=EmbeddingScale.NONE,
                          activation=Activation.GELU, output_bias=OutputBias.BIAS, **LEARNED), Family.BART),
    "pre_learned_untied": (dict(tie_embeddings=False, output_bias=OutputBias.BIAS, **LEARNED), Family.MBART),
}


def random_native(config: ModelConfig, tokenizer_dir: Path, output: Path) -> Path:
    """A random polyseq model of `config` with random norms and biases, with a real tokenizer."""
    torch.manual_seed(0)
    model = Seq2Seq(config).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                parameter.add_(0.2 * torch.randn(parameter.shape))
        model.embed.weight[config.pad_id].zero_()

    def fill(directory: Path) -> None:
        save_model_files(directory, model, {"note": "random"})
        shutil.copy2(tokenizer_dir / "tokenizer.model", directory / "tokenizer.model")

    return write_directory_atomic(output, fill)


def favouring_padding(model_dir: Path, output: Path, spec: Spec, src: torch.Tensor) -> Path:
    """A copy of the trained polyseq model in `model_dir` that prefers <pad> wherever its greedy
    output for `src` has its most frequent token: <pad>'s output row (tied: its embedding) is
    1.2 times that token's."""
    model = load_model(model_dir)
    generated = Counter(token for row in polyseq_generate(model, spec, src, 20) for token in row)
    with torch.no_grad():
        model.embed.weight[spec.pad] = 1.2 * model.embed.weight[generated.most_common(1)[0][0]]

    def fill(directory: Path) -> None:
        save_model_files(directory, model, load_metadata(model_dir))
        shutil.copy2(model_dir / "tokenizer.model", directory / "tokenizer.model")

    return write_directory_atomic(output, fill)
