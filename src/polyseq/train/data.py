"""Turn a DataConfig into what the training loop needs: a tokenizer, filtered training examples
(real pairs, and synthetic correction pairs when data.noise_source is set) with the direction of
each, validation sets per direction, the target vocabularies, and a summary for the model's
metadata.

The tokenizer is polyseq's own, trained here on the corpus, or, in a run fine-tuning an imported
model (`train.init_from`), that model's: the run's tokenizer folder then holds its files, its
metadata and its [model] settings (`polyseq.train.initial`)."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from polyseq.config import DataConfig, ModelConfig
from polyseq.data.corpus import (
    CorpusError,
    Example,
    Pair,
    encode_framed_pairs,
    encode_pairs,
    filter_indices,
    load_corpus,
    read_lines,
)
from polyseq.data.examples import ExampleStore
from polyseq.data.noise import NoiseRates, frequent_words, learn_confusions, synthetic_pairs
from polyseq.data.sentinels import add_sentinels
from polyseq.model.checkpoint import METADATA_FILE, load_metadata, load_model_config
from polyseq.text.framing import TextTokenizer
from polyseq.text.tokenizer import Tokenizer
from polyseq.text.vocabularies import LanguageVocabularies

FILLERS = 100  # how many of the noise source's most frequent words insertions draw from


@dataclass
class ValidSet:
    direction: tuple[str, str]
    pairs: Sequence[Pair]
    examples: list[Example]
    prefix_length: int = 1  # the forced start of each target: polyseq's <2tgt>, or an imported model's


@dataclass
class PreparedData:
    tokenizer: TextTokenizer
    train: Sequence[Example]  # an ExampleStore, or a list where an objective made them
    valid: list[ValidSet]
    summary: dict[str, Any] = field(default_factory=dict)
    train_directions: list[str] = field(default_factory=list)  # "en-de" per training example
    vocabularies: LanguageVocabularies | None = None  # target tokens per language
    pairs: Sequence[Pair] = ()  # the training pairs as text (objectives beside translation read them)
    # fine-tuning an imported model: its [model] settings, and the metadata its directories carry on
    # (tokenizer description, Hugging Face files for an export; "hf_files" names the files)
    architecture: ModelConfig | None = None
    inherited: dict[str, Any] = field(default_factory=dict)

    def own_tokenizer(self) -> Tokenizer:
        """polyseq's own tokenizer, which the objectives beside translation and action targets
        need (a run fine-tuning an imported model is refused them before it gets here)."""
        if not isinstance(self.tokenizer, Tokenizer):
            raise TypeError("this run fine-tunes an imported model, whose tokenizer is not polyseq's")
        return self.tokenizer


def _split_valid(pairs: Sequence[Pair], size: int, seed: int,
                 log: Any = print) -> tuple[list[Pair], list[Pair]]:
    """Hold out about `size` source sentences (at most a tenth of them) when no validation corpus
    is given: whole groups of pairs linked by a shared sentence (a sentence, its translations and
    theirs, in every direction), so that no held-out sentence is trained on, on either side."""
    groups = _linked_groups(pairs)
    sources = len({pair.src for pair in pairs})
    budget = min(size, sources // 10)
    if budget < size:
        log(f"validation: {budget:,} of the {size:,} sentences data.valid_size asks for, as a tenth "
            f"of the {sources:,} source sentences is the most held out; give data.valid for more")
    random.Random(seed).shuffle(groups)
    held: set[int] = set()
    taken = 0
    for group in groups:  # a group larger than what is left (a sentence shared by many) stays
        count = len({pairs[i].src for i in group})
        if taken + count <= budget:
            held.update(group)
            taken += count
    if taken < budget:
        log(f"validation: {taken:,} sentences held out, not {budget:,}: the others share a sentence "
            "with too many pairs to leave training; give data.valid")
    return ([p for i, p in enumerate(pairs) if i not in held],
            [p for i, p in enumerate(pairs) if i in held])


def _linked_groups(pairs: Sequence[Pair]) -> list[list[int]]:
    """The pairs' indices grouped by shared sentences (each a language and a text), in order."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def root(node: tuple[str, str]) -> tuple[str, str]:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for pair in pairs:
        parent[root((pair.src_lang, pair.src))] = root((pair.tgt_lang, pair.tgt))
    groups: dict[tuple[str, str], list[int]] = {}
    for index, pair in enumerate(pairs):
        groups.setdefault(root((pair.src_lang, pair.src)), []).append(index)
    return list(groups.values())


def prepare_data(config: DataConfig, tokenizer_dir: Path, seed: int, log: Any = print,
                 extra_texts: Sequence[str] = ()) -> PreparedData:
    """Load and filter the corpus; train the tokenizer into `tokenizer_dir` unless one is there
    (a resumed run reuses it, so token ids never change under a checkpoint), on the corpus and
    `extra_texts` (what the training objectives add)."""
    if not config.train and not config.noise_source:
        raise ValueError("data.train is not set: give a corpus path in the config or data.train=PATH")
    directions = config.all_directions()
    train_pairs: Sequence[Pair] = []
    if config.train:  # DataConfig makes sure that a run without it has data.valid
        corpus = load_corpus(config.train, config.languages, directions)
        log(f"training corpus: {corpus.stats.summary()}")
        train_pairs = corpus
    valid_pairs: Sequence[Pair]
    if config.valid:
        valid_directions = config.valid_directions or directions
        valid_pairs = load_corpus(config.valid, config.languages, valid_directions)
    else:
        train_pairs, valid_pairs = _split_valid(train_pairs, config.valid_size, seed, log)
    synthetic: list[Pair] = []
    if config.noise_source:  # after the split: confusions are learned from training pairs only
        synthetic = synthetic_correction_pairs(config, train_pairs, seed, log)
        train_pairs = [*train_pairs, *synthetic]
    if config.sentinel_rate:  # before the tokenizer, so that it learns the sentinels' pieces
        train_pairs = add_sentinels(train_pairs, config.sentinel_rate, seed)
    tokenizer: TextTokenizer
    architecture, inherited = None, {}
    if (tokenizer_dir / METADATA_FILE).is_file():  # an imported model's, which the run fine-tunes
        from polyseq.translator import load_text_tokenizer

        tokenizer = load_text_tokenizer(tokenizer_dir)
        architecture, inherited = load_model_config(tokenizer_dir), load_metadata(tokenizer_dir)
    elif (tokenizer_dir / "tokenizer.model").is_file():
        tokenizer = Tokenizer.load(tokenizer_dir)
    else:
        texts = [*_sentences_by_language(train_pairs), *extra_texts]
        tokenizer = Tokenizer.train(texts, tokenizer_dir, vocab_size=config.vocab_size,
                                    languages=config.languages, seed=seed,
                                    character_coverage=config.character_coverage)
    encoded = _encode(train_pairs, tokenizer)
    kept, report = filter_indices(encoded, max_length=config.max_length, max_ratio=config.max_ratio)
    examples = encoded.take(kept)
    names = {pair: "-".join(pair) for pair in {*map(_direction, train_pairs)}}  # one string each
    example_directions = [names[_direction(train_pairs[i])] for i in kept]
    log(f"training data: {report.summary()}")
    valid = _valid_sets(valid_pairs, tokenizer, config.max_length, log)
    summary = {
        "languages": list(tokenizer.languages),
        "directions": [f"{a}-{b}" for a, b in directions],
        "train": config.train, "valid": config.valid or f"held out {len(valid_pairs)} pairs",
        "train_pairs": len(train_pairs), "train_examples": len(examples),
        "filter": report.summary(),
        "valid_directions": [f"{v.direction[0]}-{v.direction[1]}" for v in valid],
    }
    if config.noise_source:
        summary["synthetic_pairs"] = len(synthetic)
    vocabularies = _target_vocabularies(examples, example_directions, tokenizer)
    return PreparedData(tokenizer, examples, valid, summary, example_directions, vocabularies, train_pairs,
                        architecture, inherited)


def _target_vocabularies(examples: ExampleStore, directions: list[str],
                         tokenizer: TextTokenizer) -> LanguageVocabularies:
    """The target tokens of each language, counted without the decoder's forced start and EOS."""
    by_direction: dict[str, list[int]] = defaultdict(list)
    for index, name in enumerate(directions):
        by_direction[name].append(index)
    counts: dict[str, np.ndarray] = {}
    for name, rows in sorted(by_direction.items()):
        src, _, tgt = name.partition("-")
        ids = examples.take(rows).target_ids(_prefix_length(tokenizer, (src, tgt)))
        counts[tgt] = counts.get(tgt, 0) + np.bincount(ids, minlength=tokenizer.vocab_size)
    return LanguageVocabularies({lang: counts[lang] for lang in sorted(counts)}, tokenizer.vocab_size)


def _encode(pairs: Sequence[Pair], tokenizer: TextTokenizer) -> ExampleStore:
    """polyseq's own tokenizer encodes in batches; an imported one frames each direction its way."""
    return encode_pairs(pairs, tokenizer) if isinstance(tokenizer, Tokenizer) else \
        encode_framed_pairs(pairs, tokenizer)


def _direction(pair: Pair) -> tuple[str, str]:
    return pair.src_lang, pair.tgt_lang


def _prefix_length(tokenizer: TextTokenizer, direction: tuple[str, str]) -> int:
    return len(tokenizer.framing(*direction).decoder_prefix)


def synthetic_correction_pairs(config: DataConfig, real: Sequence[Pair], seed: int,
                               log: Any = print) -> list[Pair]:
    """data.noise_pairs (or one per line) corrupted copies of data.noise_source's lines, as
    noise_lang-noise_lang pairs; confusion sets learned as data.noise_confusions_from says."""
    lang = config.noise_lang
    clean = [line for line in read_lines(config.noise_source) if line.strip()]
    if not clean:
        raise CorpusError(f"{config.noise_source} has only blank lines; data.noise_source needs "
                          "clean text, one sentence per line")
    if config.noise_confusions_from == "train":
        learned_from: Sequence[Pair] = [p for p in real if p.src_lang == p.tgt_lang == lang]
    elif config.noise_confusions_from:
        learned_from = load_corpus(config.noise_confusions_from, config.languages, [(lang, lang)])
    else:
        learned_from = []
    confusions = learn_confusions(((p.src, p.tgt) for p in learned_from),
                                  config.noise_confusion_min_count)
    rates = noise_rates(config)
    rng = random.Random(f"polyseq.data.noise:{seed}")  # a stream of its own, apart from sentinels'
    pairs = synthetic_pairs(clean, rng, rates, count=config.noise_pairs or len(clean),
                            keep=config.noise_keep, confusions=confusions,
                            fillers=frequent_words(clean, FILLERS))
    unchanged = sum(src == tgt for src, tgt in pairs)
    log(f"synthetic correction pairs: {len(pairs):,} from {len(clean):,} lines of "
        f"{config.noise_source} ({unchanged:,} unchanged); {len(confusions):,} confusion sets "
        f"from {len(learned_from):,} {lang}-{lang} pairs")
    return [Pair(src, tgt, lang, lang) for src, tgt in pairs]


def noise_rates(config: DataConfig) -> NoiseRates:
    """The [data] noise_*_rate settings as NoiseRates."""
    return NoiseRates(
        typo=config.noise_typo_rate, delete=config.noise_delete_rate,
        insert=config.noise_insert_rate, swap=config.noise_swap_rate,
        repeat=config.noise_repeat_rate, punctuation=config.noise_punctuation_rate,
        casing=config.noise_casing_rate, confusion=config.noise_confusion_rate,
    )


def _sentences_by_language(pairs: Sequence[Pair]) -> list[str]:
    seen: dict[str, set[str]] = defaultdict(set)
    for pair in pairs:
        seen[pair.src_lang].add(pair.src)
        seen[pair.tgt_lang].add(pair.tgt)
    return [text for lang in sorted(seen) for text in sorted(seen[lang])]


def _valid_sets(pairs: Sequence[Pair], tokenizer: TextTokenizer, max_length: int,
                log: Any = print) -> list[ValidSet]:
    """The validation pairs by direction, those longer than data.max_length left out (the model's
    positions end there too)."""
    by_direction: dict[tuple[str, str], list[Pair]] = defaultdict(list)
    for pair in pairs:
        by_direction[(pair.src_lang, pair.tgt_lang)].append(pair)
    sets = []
    for direction, items in sorted(by_direction.items()):
        encoded = _encode(items, tokenizer)
        kept, report = filter_indices(encoded, max_length=max_length, max_ratio=math.inf)
        if report.too_long:
            log(f"validation {'-'.join(direction)}: {report.too_long:,} pairs longer than "
                f"data.max_length ({max_length}) left out")
        if kept:
            sets.append(ValidSet(direction, [items[i] for i in kept], [encoded[i] for i in kept],
                                 _prefix_length(tokenizer, direction)))
    return sets
