"""Target-language vocabularies: which tokens each language's training targets use, and how often.

Training counts the tokens on the target side of its examples per target language and writes
them into every model directory (`vocabularies.json`). Decoding can then be restricted to the
tokens of the target language (`Translator.translate(..., restrict_vocabulary=True)`), a remedy
for off-target output: a zero-shot direction that drifts into another language finds that
language's own pieces banned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from polyseq.files import InputError, write_json_atomic

VOCABULARIES_FILE = "vocabularies.json"
FORMAT = 1
# Translations carry a little of their source language: on multi30k's French side, "the" 4 times
# and "standing" once in 660,000 tokens, where a French word of the same rank is seen thousands
# of times. A token must make up 2 in 100,000 of its language's targets to count as its own.
DEFAULT_MIN_SHARE = 2e-5


class LanguageVocabularies:
    """Token counts per language, each a list of `vocab_size` integers."""

    def __init__(self, counts: Mapping[str, Sequence[int] | np.ndarray], vocab_size: int):
        for lang, row in counts.items():
            if len(row) != vocab_size:
                raise ValueError(f"the counts of {lang!r} have {len(row)} entries, not {vocab_size}")
        self.counts = {lang: np.asarray(row, dtype=np.int64) for lang, row in counts.items()}
        self.vocab_size = vocab_size

    @classmethod
    def count(cls, targets: Iterable[tuple[str, Sequence[int]]], vocab_size: int) -> LanguageVocabularies:
        """Counts from (language, token ids) pairs: the ids of each target text."""
        ids: dict[str, list[Sequence[int]]] = {}
        for lang, tokens in targets:
            ids.setdefault(lang, []).append(tokens)
        counts = {lang: np.bincount(np.fromiter((i for row in rows for i in row), dtype=np.int64),
                                    minlength=vocab_size).tolist()
                  for lang, rows in sorted(ids.items())}
        return cls(counts, vocab_size)

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.counts)

    def allowed(self, lang: str, min_share: float = DEFAULT_MIN_SHARE,
                always: Iterable[int] = ()) -> tuple[int, ...]:
        """The ids that make up at least `min_share` of `lang`'s target tokens (and were seen at
        all), with `always` (EOS)."""
        if lang not in self.counts:
            raise InputError(f"the model's vocabularies know no target language {lang!r} (they have "
                             f"{', '.join(self.languages) or 'none'}): it never trained into it")
        if not 0.0 <= min_share < 1.0:
            raise InputError(f"the vocabulary's min_share must be in [0, 1), got {min_share}")
        counts = self.counts[lang]
        seen = set(np.flatnonzero(counts >= max(1.0, min_share * counts.sum())).tolist())
        return tuple(sorted(seen | set(always)))

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / VOCABULARIES_FILE
        write_json_atomic(path, {"format": FORMAT, "vocab_size": self.vocab_size,
                                 "counts": {lang: row.tolist() for lang, row in self.counts.items()}})
        return path

    @classmethod
    def load(cls, directory: str | Path) -> LanguageVocabularies:
        """Read a model directory's vocabularies; InputError naming the file when it is missing
        or malformed."""
        import json

        path = Path(directory) / VOCABULARIES_FILE
        if not path.is_file():
            raise InputError(f"{path} does not exist: restricting the vocabulary needs the target "
                             "vocabularies that training writes into the model directory")
        try:
            data: Any = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != FORMAT:
                raise ValueError(f"unknown format {data.get('format')!r}")
            return cls(data["counts"], int(data["vocab_size"]))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise InputError(f"{path} is malformed ({error}); train again or remove it") from None
