"""The training objectives: translation and the objectives that can join it. Each is a small module
with a documented loss on a batch, its own data where it needs any, and its own metrics (logged per
objective in metrics.jsonl). `[train] objectives = {translation = 1.0, denoising = 0.3}` trains on

    sum over objectives o of  w_o x (o's summed loss over the step's global batch) / (o's count)

and translation alone computes exactly what a run computed before there were other objectives.

  translation  cross-entropy of the target given the source                      per target token
  denoising    BART: masked spans and permuted sentences of monolingual text     per target token
  e2s2         E2S2: the encoder restores corrupted source tokens; a sentence
               and its corrupted view pulled together                           per sentence
  csr          code-switching restore with a lexicon induced from the corpus     per target token
  claps        CLAPS: contrastive, with adversarial imposters and distant targets per sentence
  translico    TransliCo: a sentence and its Latin transliteration pulled together per sentence

Their settings are [objectives] (polyseq.config.ObjectivesConfig); docs/objectives.md has the guide.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from polyseq.config import ExperimentConfig, ObjectivesConfig
from polyseq.data.corpus import CorpusError, Pair, read_lines
from polyseq.train.objectives.base import Objective, Objectives, StepContext, Term
from polyseq.train.objectives.claps import Claps
from polyseq.train.objectives.csr import restore_examples
from polyseq.train.objectives.denoising import Denoising, denoising_examples
from polyseq.train.objectives.e2s2 import E2S2
from polyseq.train.objectives.losses import label_smoothed_nll
from polyseq.train.objectives.translation import OwnExamples, Translation
from polyseq.train.objectives.translico import Translico, view_pairs

__all__ = ["Objective", "Objectives", "StepContext", "Term", "build_objectives", "label_smoothed_nll",
           "tokenizer_texts"]


def monolingual_texts(config: ExperimentConfig, pairs: Sequence[Pair]) -> dict[str, list[str]]:
    """Text per language for denoising: objectives.monolingual's PREFIX.<lang> files, or else
    every distinct sentence of the training corpus, in its order."""
    prefix = config.objectives.monolingual
    if prefix:
        found = {lang: [line for line in read_lines(f"{prefix}.{lang}") if line.strip()]
                 for lang in config.data.languages if Path(f"{prefix}.{lang}").is_file()}
        if not found:
            raise CorpusError(f"objectives.monolingual = {prefix!r}: no {prefix}.<lang> file for any of "
                              f"data.languages {list(config.data.languages)}")
        return found
    seen: dict[str, dict[str, None]] = defaultdict(dict)
    for pair in pairs:
        seen[pair.src_lang][pair.src] = None
        seen[pair.tgt_lang][pair.tgt] = None
    return {lang: list(texts) for lang, texts in seen.items()}


def _translit_pairs(config: ExperimentConfig) -> list[tuple[str, str]]:
    return view_pairs(read_lines(config.objectives.translit_source))


def tokenizer_texts(config: ExperimentConfig) -> list[str]:
    """Text the objectives add to the tokenizer's training (none for translation alone)."""
    chosen, texts = config.train.objectives, []
    if "denoising" in chosen and config.objectives.monolingual:
        texts += [t for lines in monolingual_texts(config, []).values() for t in lines]
    if "translico" in chosen:
        texts += [text for pair in _translit_pairs(config) for text in pair]
    return texts


# which objectives read each [objectives] setting, by the start of its name
_READERS = {"monolingual": ("denoising",), "denoise_": ("denoising",), "e2s2_": ("e2s2",), "csr_": ("csr",),
            "claps_": ("claps",), "translit_": ("translico",), "temperature": ("e2s2", "claps", "translico")}


def unused_settings(config: ExperimentConfig) -> list[str]:
    """The [objectives] settings given (not at their defaults) that no objective of the run reads:
    a translit_ setting counts while translico is named, even at weight 0 (its text still joins
    the tokenizer's), any other while one of its objectives has a weight."""
    defaults, chosen = ObjectivesConfig(), config.train.objectives
    unused = []
    for field in fields(ObjectivesConfig):
        value = getattr(config.objectives, field.name)
        if value == getattr(defaults, field.name):
            continue
        readers = next(names for start, names in _READERS.items() if field.name.startswith(start))
        if not any(chosen.get(name, 0) > 0 or (name == "translico" and name in chosen) for name in readers):
            unused.append(f"objectives.{field.name} = {value!r} has no effect: train.objectives has no "
                          f"{' or '.join(readers)}")
    return unused


def build_objectives(config: ExperimentConfig, tokenizer: Any, pairs: Sequence[Pair],
                     log: Any = print) -> Objectives:
    """The objectives train.objectives names (weight 0 leaves one out), with their data; a
    setting of [objectives] that none of them reads is logged."""
    data, train, settings = config.data, config.train, config.objectives
    for message in unused_settings(config):
        log(message)
    streams: dict[str, Any] = dict(max_tokens=data.max_tokens, smoothing=train.label_smoothing)
    chosen: list[tuple[Objective, float]] = []
    for number, (name, weight) in enumerate(train.objectives.items()):
        seed = train.seed * 1000 + number + 1  # a stream of its own, apart from translation's
        objective: Objective
        if not weight:
            continue
        if name == "translation":
            objective = Translation(train.label_smoothing, tokenizer.pad_id)
        elif name == "denoising":
            examples = denoising_examples(monolingual_texts(config, pairs), tokenizer, settings,
                                          data.max_length, train.seed)
            objective = Denoising(examples, tokenizer, settings, seed=seed, **streams)
        elif name == "csr":
            examples = restore_examples(pairs, tokenizer, settings, max_length=data.max_length,
                                        seed=train.seed, log=log)
            objective = OwnExamples("csr", examples, tokenizer.pad_id, seed=seed, **streams)
        elif name == "e2s2":
            objective = E2S2(tokenizer, settings)
        elif name == "claps":
            objective = Claps(tokenizer.pad_id, settings, config.model.d_model, seed)
        else:
            objective = Translico(_translit_pairs(config), tokenizer, settings, max_tokens=data.max_tokens,
                                  max_length=data.max_length, seed=seed)
        chosen.append((objective, weight))
        if name != "translation":
            log(f"objective {name}: weight {weight:g}")
    return Objectives(chosen)
