"""Parallel corpora: aligned text files, TSV and JSONL into language-tagged pairs; encode; filter.

A corpus spec is one of
  - a path prefix of aligned files: `data/train` reads `data/train.en`, `data/train.de`, ... and
    pairs line i of every requested direction (4 languages give 12 directions);
  - a `.tsv` file: `src<TAB>tgt` (exactly one direction requested) or
    `src_lang<TAB>tgt_lang<TAB>src<TAB>tgt`;
  - a `.jsonl` file: one object per line with `src`, `tgt` and optional `src_lang`, `tgt_lang`.

Bad input raises CorpusError naming the file and line. Pairs with an empty (or blank) side, and TSV
or JSONL records of a direction that was not requested, are skipped and counted in CorpusStats,
which load_corpus also logs; the length filter reports what it drops in a FilterReport.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import numpy as np

from polyseq.data.examples import Example, ExampleStore
from polyseq.files import InputError, read_text_lines
from polyseq.text.framing import TextTokenizer
from polyseq.text.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

LANG_KEYS = ("src_lang", "tgt_lang")
RATIO_MIN_TOKENS = 5  # the length-ratio filter looks only at pairs with both sides this long
ENCODE_CHUNK = 20_000  # pairs encoded at a time: their lists of ids live that long, then go flat
_SHOWN_SKIPS = 3  # how many skipped locations a CorpusStats remembers for its summary
_Encoder = Callable[[Sequence[str], str], list[list[int]]]


class CorpusError(InputError):
    """A corpus file is missing, unreadable or malformed, or names an unknown language."""


@dataclass(frozen=True, slots=True)
class Pair:
    src: str
    tgt: str
    src_lang: str
    tgt_lang: str


@dataclass(frozen=True)
class CorpusStats:
    """What load_corpus read and what it skipped."""

    source: str
    records: int  # candidate pairs: lines x directions for aligned files, lines for TSV/JSONL
    pairs: int
    skipped_empty: int
    skipped_direction: int  # records of a direction not requested (or, aligned, one language to itself)
    skipped_at: tuple[str, ...]  # "file:line" of the first skipped empty pairs

    @property
    def skipped(self) -> int:
        return self.skipped_empty + self.skipped_direction

    def summary(self) -> str:
        text = f"{self.source}: {self.pairs:,} pairs from {self.records:,} records"
        if self.skipped_empty:
            where = ", ".join(self.skipped_at)
            text += f"; skipped {self.skipped_empty:,} with an empty side (first at {where})"
        if self.skipped_direction:
            text += f"; skipped {self.skipped_direction:,} of directions not requested"
        return text


class Corpus(Sequence[Pair]):
    """The pairs of a corpus (a read-only sequence) with the statistics of reading it."""

    def __init__(self, pairs: list[Pair], stats: CorpusStats) -> None:
        self.pairs = pairs
        self.stats = stats

    def __len__(self) -> int:
        return len(self.pairs)

    @overload
    def __getitem__(self, index: int) -> Pair: ...
    @overload
    def __getitem__(self, index: slice) -> list[Pair]: ...
    def __getitem__(self, index: int | slice) -> Pair | list[Pair]:
        return self.pairs[index]

    def __iter__(self) -> Iterator[Pair]:
        return iter(self.pairs)

    def __repr__(self) -> str:
        return f"Corpus({self.stats.summary()})"


# --------------------------------------------------------------------------------------- reading


def read_lines(path: str | Path) -> list[str]:
    """The lines of a corpus file (`polyseq.files.read_text_lines`), which must not be empty."""
    try:
        lines = read_text_lines(path)
    except InputError as error:
        raise CorpusError(str(error)) from None
    if not lines:
        raise CorpusError(f"{path} is empty; give a file with one sentence per line")
    return lines


class _Collector:
    """Turns records into pairs: checks languages, routes directions, counts what it skips."""

    def __init__(self, source: str, languages: tuple[str, ...], directions: set[tuple[str, str]]):
        self.source = source
        self.languages = set(languages)
        self.known = ", ".join(languages)
        self.directions = directions
        self.pairs: list[Pair] = []
        self.records = self.skipped_empty = self.skipped_direction = 0
        self.skipped_at: list[str] = []

    def check_language(self, lang: object, where: str) -> None:
        if not isinstance(lang, str) or lang not in self.languages:
            raise CorpusError(
                f"{where}: unknown language {lang!r}; the languages are {self.known} (add it to "
                "data.languages or remove these lines)"
            )

    def add(self, src: str, tgt: str, langs: tuple[str, str], line: int, paths: tuple[Path, Path]):
        self.records += 1
        if langs not in self.directions:
            self.skipped_direction += 1
        elif src.strip() and tgt.strip():  # the ends' whitespace off, as the Translator reads text
            self.pairs.append(Pair(src.strip(), tgt.strip(), langs[0], langs[1]))
        else:
            self.skipped_empty += 1
            if len(self.skipped_at) < _SHOWN_SKIPS:
                self.skipped_at.append(f"{paths[0] if not src.strip() else paths[1]}:{line}")

    def corpus(self) -> Corpus:
        stats = CorpusStats(
            self.source, self.records, len(self.pairs), self.skipped_empty,
            self.skipped_direction, tuple(self.skipped_at),
        )
        if stats.skipped:
            logger.warning("%s", stats.summary())
        if not self.pairs:
            raise CorpusError(f"no pairs: {stats.summary()}")
        return Corpus(self.pairs, stats)


def load_corpus(
    spec: str | Path,
    languages: Sequence[str],
    directions: Sequence[tuple[str, str] | str],
) -> Corpus:
    """Read a corpus spec (see the module docstring) into pairs for the requested directions.

    `directions` holds (src, tgt) tuples or "src-tgt" strings. Returns a Corpus: a sequence of
    Pair with `.stats` saying what was skipped. Raises CorpusError for bad input.
    """
    langs = tuple(languages)
    dirs = _check_directions(directions, langs)
    path = Path(spec)
    collector = _Collector(str(spec), langs, set(dirs))
    if path.suffix == ".tsv":
        _read_tsv(path, dirs, collector)
    elif path.suffix == ".jsonl":
        _read_jsonl(path, dirs, collector)
    else:
        _read_aligned(path, dirs, collector)
    return collector.corpus()


def _check_directions(
    directions: Sequence[tuple[str, str] | str], languages: tuple[str, ...]
) -> list[tuple[str, str]]:
    if not languages:
        raise CorpusError("no languages given; set data.languages, e.g. ['en', 'de']")
    result: list[tuple[str, str]] = []
    for direction in directions:
        pair = tuple(direction.split("-")) if isinstance(direction, str) else tuple(direction)
        if len(pair) != 2:
            raise CorpusError(f"direction {direction!r} must be a (src, tgt) pair like 'en-de'")
        for lang in pair:
            if lang not in languages:
                raise CorpusError(
                    f"direction {'-'.join(pair)} uses {lang!r}, which is not one of the "
                    f"languages ({', '.join(languages)})"
                )
        if pair not in result:
            result.append(pair)  # type: ignore[arg-type]
    if not result:
        raise CorpusError("no directions requested; give at least one, e.g. [('en', 'de')]")
    return result


def _read_aligned(prefix: Path, dirs: list[tuple[str, str]], collector: _Collector) -> None:
    needed = list(dict.fromkeys(lang for pair in dirs for lang in pair))
    files = {lang: Path(f"{prefix}.{lang}") for lang in needed}
    for lang, path in files.items():
        if not path.is_file():
            users = ", ".join(f"{s}-{t}" for s, t in dirs if lang in (s, t))
            raise CorpusError(
                f"{path} does not exist: direction {users} needs a {lang!r} file; an aligned "
                f"corpus '{prefix}' is one file per language named {prefix.name}.LANG"
            )
    lines = {lang: read_lines(path) for lang, path in files.items()}
    first = needed[0]
    for lang in needed[1:]:
        if len(lines[lang]) != len(lines[first]):
            raise CorpusError(
                f"{files[first]} has {len(lines[first]):,} lines but {files[lang]} has "
                f"{len(lines[lang]):,}; aligned files need one line per sentence, in the same order"
            )
    for src, tgt in dirs:
        if src == tgt:  # one file on both sides would be copies, not corrections
            logger.warning("%s: an aligned corpus has no %s-%s pairs; direction left out (give "
                           "correction pairs as a TSV or JSONL corpus)", prefix, src, tgt)
            collector.records += len(lines[src])
            collector.skipped_direction += len(lines[src])
            continue
        paths = (files[src], files[tgt])
        for number, (a, b) in enumerate(zip(lines[src], lines[tgt], strict=True), start=1):
            collector.add(a, b, (src, tgt), number, paths)


def _read_tsv(path: Path, dirs: list[tuple[str, str]], collector: _Collector) -> None:
    lines = read_lines(path)
    columns = lines[0].count("\t") + 1
    if columns not in (2, 4):
        raise CorpusError(
            f"{path}:1: found {columns} tab-separated columns; a TSV corpus has 2 (src, tgt) or "
            "4 (src_lang, tgt_lang, src, tgt)"
        )
    if columns == 2 and len(dirs) != 1:
        raise CorpusError(
            f"{path}: a 2-column TSV holds one direction but {len(dirs)} were requested; request "
            "one, or use 4 columns: src_lang<TAB>tgt_lang<TAB>src<TAB>tgt"
        )
    for number, line in enumerate(lines, start=1):
        fields = line.split("\t")
        if len(fields) != columns:
            found = "an empty line" if not line else f"{len(fields)} columns"
            raise CorpusError(
                f"{path}:{number}: found {found}, expected {columns} tab-separated columns like "
                "line 1 (a tab inside a sentence must be removed or replaced)"
            )
        if columns == 4:
            src_lang, tgt_lang, src, tgt = fields
            collector.check_language(src_lang, f"{path}:{number}")
            collector.check_language(tgt_lang, f"{path}:{number}")
            langs = (src_lang, tgt_lang)
        else:
            (src, tgt), langs = fields, dirs[0]
        collector.add(src, tgt, langs, number, (path, path))


def _read_jsonl(path: Path, dirs: list[tuple[str, str]], collector: _Collector) -> None:
    default = dirs[0] if len(dirs) == 1 else None
    for number, line in enumerate(read_lines(path), start=1):
        where = f"{path}:{number}"
        src, tgt, langs = _json_record(line, where, default)
        for lang in langs:
            collector.check_language(lang, where)
        collector.add(src, tgt, langs, number, (path, path))


def _json_record(
    line: str, where: str, default: tuple[str, str] | None
) -> tuple[str, str, tuple[str, str]]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        what = "empty line" if not line.strip() else f"invalid JSON: {error.msg}, col {error.colno}"
        raise CorpusError(f"{where}: {what}; each line must be one JSON object") from None
    if not isinstance(record, dict):
        raise CorpusError(f"{where}: expected a JSON object with 'src' and 'tgt'")
    for key in ("src", "tgt"):
        if not isinstance(record.get(key), str):
            raise CorpusError(f"{where}: '{key}' must be a string, found {record.get(key)!r}")
        try:  # JSON can escape a lone surrogate ("\ud83d", half an emoji), which is no text
            record[key].encode("utf-8")
        except UnicodeEncodeError as error:
            raise CorpusError(f"{where}: '{key}' is not valid Unicode (a lone surrogate "
                              f"{record[key][error.start]!r} at character {error.start})") from None
    if default is None and not all(key in record for key in LANG_KEYS):
        raise CorpusError(
            f"{where}: no src_lang/tgt_lang; give both on every line or request exactly one "
            "direction"
        )
    langs: list[str] = []
    for k, key in enumerate(LANG_KEYS):
        lang = record.get(key, default[k] if default else None)
        if not isinstance(lang, str):
            raise CorpusError(f"{where}: '{key}' must be a language code string, found {lang!r}")
        langs.append(lang)
    return record["src"], record["tgt"], (langs[0], langs[1])


# --------------------------------------------------------------------------------------- encoding


def encode_pairs(pairs: Sequence[Pair], tokenizer: Tokenizer) -> ExampleStore:
    """Token ids for every pair: source_ids(src, tgt_lang) and target_ids(tgt, tgt_lang).

    Encodes ENCODE_CHUNK pairs at a time, each distinct text of a chunk once per target language,
    in SentencePiece's batch encoder.
    """
    return _chunked(pairs, lambda chunk: _encode_pairs(chunk, tokenizer))


def encode_framed_pairs(pairs: Sequence[Pair], tokenizer: TextTokenizer) -> ExampleStore:
    """Token ids for every pair as `tokenizer` frames its direction (an imported model's tokenizer
    puts language codes where its model was trained to read them)."""
    return _chunked(pairs, lambda chunk: _encode_framed_pairs(chunk, tokenizer))


def _chunked(pairs: Sequence[Pair], encode: Callable[[list[Pair]], list[Example]]) -> ExampleStore:
    """`encode` over ENCODE_CHUNK pairs at a time, each chunk's lists made flat before the next."""
    chunks = []
    for start in range(0, len(pairs), ENCODE_CHUNK):
        chunk = [pairs[i] for i in range(start, min(start + ENCODE_CHUNK, len(pairs)))]
        chunks.append(ExampleStore.of(encode(chunk)))
    return ExampleStore.joined(chunks)


def _encode_pairs(pairs: Sequence[Pair], tokenizer: Tokenizer) -> list[Example]:
    groups: dict[str, list[int]] = {}
    for index, pair in enumerate(pairs):
        groups.setdefault(pair.tgt_lang, []).append(index)
    examples: list[Example | None] = [None] * len(pairs)
    for lang, indices in groups.items():
        srcs = _encode_unique([pairs[i].src for i in indices], tokenizer.source_ids_batch, lang)
        tgts = _encode_unique([pairs[i].tgt for i in indices], tokenizer.target_ids_batch, lang)
        for index, src, tgt in zip(indices, srcs, tgts, strict=True):
            examples[index] = Example(src, tgt)
    return examples  # type: ignore[return-value]


def _encode_framed_pairs(pairs: Sequence[Pair], tokenizer: TextTokenizer) -> list[Example]:
    groups: dict[tuple[str, str], list[int]] = {}
    for index, pair in enumerate(pairs):
        groups.setdefault((pair.src_lang, pair.tgt_lang), []).append(index)
    examples: list[Example | None] = [None] * len(pairs)
    for (src_lang, tgt_lang), indices in groups.items():
        framing = tokenizer.framing(src_lang, tgt_lang)
        sources = {text: framing.source(tokenizer.encode(text))
                   for text in dict.fromkeys(pairs[i].src for i in indices)}
        targets = {text: framing.target(tokenizer.encode_target(text))
                   for text in dict.fromkeys(pairs[i].tgt for i in indices)}
        for index in indices:
            examples[index] = Example(sources[pairs[index].src], targets[pairs[index].tgt])
    return examples  # type: ignore[return-value]


def _encode_unique(texts: list[str], encode: _Encoder, lang: str) -> list[list[int]]:
    unique = list(dict.fromkeys(texts))
    table = dict(zip(unique, encode(unique, lang), strict=True))
    return [table[text] for text in texts]


# --------------------------------------------------------------------------------------- filtering


@dataclass(frozen=True)
class FilterReport:
    total: int
    kept: int
    too_long: int
    bad_ratio: int
    max_length: int
    max_ratio: float

    @property
    def dropped(self) -> int:
        return self.too_long + self.bad_ratio

    def summary(self) -> str:
        if not self.dropped:
            return f"kept all {self.total:,} pairs"
        return (
            f"kept {self.kept:,} of {self.total:,} pairs; dropped {self.too_long:,} too long "
            f"(> {self.max_length} tokens), {self.bad_ratio:,} length ratio > {self.max_ratio}"
        )


def filter_examples(
    examples: Sequence[Example], *, max_length: int, max_ratio: float
) -> tuple[list[Example], FilterReport]:
    """Drop examples with a side longer than `max_length` tokens (specials included), and those
    whose longer side exceeds `max_ratio` times the shorter when both have RATIO_MIN_TOKENS+."""
    kept, report = filter_indices(examples, max_length=max_length, max_ratio=max_ratio)
    return [examples[i] for i in kept], report


def filter_indices(
    examples: Sequence[Example], *, max_length: int, max_ratio: float
) -> tuple[list[int], FilterReport]:
    """`filter_examples` as the indices of the kept examples, in order (to keep what else is
    known about each, such as its direction)."""
    if max_length < 1 or max_ratio < 1.0:
        raise ValueError(f"need max_length >= 1 and max_ratio >= 1, got {max_length}, {max_ratio}")
    lengths = (examples.lengths() if isinstance(examples, ExampleStore)
               else np.array([(len(e.src), len(e.tgt)) for e in examples], dtype=np.int64).reshape(-1, 2))
    short, long = lengths.min(axis=1), lengths.max(axis=1)
    too_long = long > max_length
    bad_ratio = ~too_long & (short >= RATIO_MIN_TOKENS) & (long > max_ratio * np.maximum(short, 1))
    kept = np.flatnonzero(~too_long & ~bad_ratio).tolist()
    report = FilterReport(len(examples), len(kept), int(too_long.sum()), int(bad_ratio.sum()), max_length,
                          max_ratio)
    return kept, report
