"""Glossaries: terms whose translation is fixed, or that are never translated (product names).

A glossary maps source terms to target terms; a term mapped to itself stays as it is. Each match
in a segment's prose becomes a protected span, like a placeholder: the model reads a sentinel and
copies it, and the target term is written in its place (``protect.Span.output``). Matching is
whole-word and case-sensitive, longest term first (in scripts written without spaces between
words, Chinese, Japanese, Thai, ..., any letter of theirs is a word's edge); a term that starts in
lower case also matches with a capital first letter (at a sentence's start), and its translation
then starts with one too.

A placeholder fixes the term, not its inflection or the words that agree with it: a German article
before a forced noun is the one the model chose for its own word. This is the trade-off of
DeepL's and Google's glossaries too; a term list is best kept to names and fixed expressions.

The file format is DeepL's: UTF-8, one entry per line, source term and target term separated by a
tab (``.tsv``) or a comma (``.csv``, with CSV quoting); a line with one term keeps it untranslated.
Blank lines and lines starting with ``#`` are skipped.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from pathlib import Path

from polyseq.files import InputError, read_text

# Scripts written without spaces between words (Han, kana, Thai, Lao, Myanmar, Khmer): a term in
# one is found inside running text ("東京" in "東京に行く"), as no space marks its end.
_UNSPACED = ("\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf"
             "\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f")
_SPACED_WORD = rf"[^\W{_UNSPACED}]"  # a letter or digit that continues a word written with spaces


class GlossaryError(InputError):
    """A glossary that cannot be used; the message names the file and line."""


class Glossary:
    """Source term -> target term, and where the terms occur in a text."""

    def __init__(self, terms: Mapping[str, str], source: str = "glossary") -> None:
        self.terms: dict[str, str] = {}
        for term, target in terms.items():
            if not isinstance(term, str) or not isinstance(target, str):
                raise GlossaryError(f"{source}: terms and translations must be strings, not "
                                    f"{type(term).__name__} -> {type(target).__name__}")
            if not term.strip() or not target.strip():
                raise GlossaryError(f"{source}: an empty term ({term!r} -> {target!r})")
            if term != term.strip() or target != target.strip():
                raise GlossaryError(f"{source}: {term!r} -> {target!r} has spaces at an edge")
            self.terms[term] = target
        # a sentence may start with a term written in lower case: "pull request" -> "Pull request"
        variants = {term[0].upper() + term[1:]: _capitalized(target)
                    for term, target in self.terms.items() if term[0].islower()}
        self._outputs = {**variants, **self.terms}  # a term listed with its capital wins
        alternatives = "|".join(re.escape(term) for term in sorted(self._outputs, key=len, reverse=True))
        self._pattern = (re.compile(rf"(?<!{_SPACED_WORD})(?:{alternatives})(?!{_SPACED_WORD})")
                         if self._outputs else None)

    @classmethod
    def load(cls, path: str | Path) -> Glossary:
        """A glossary file (see the module docstring); GlossaryError names the line at fault."""
        path = Path(path)
        try:
            text = read_text(path)
        except InputError as error:
            raise GlossaryError(str(error)) from None
        lines = text.splitlines()
        rows = csv.reader(lines) if path.suffix.lower() == ".csv" else (line.split("\t") for line in lines)
        terms: dict[str, str] = {}
        for number, (line, row) in enumerate(zip(lines, rows, strict=True), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            cells = [cell.strip() for cell in row]
            where = f"{path}, line {number}"
            if len(cells) > 2 or not all(cells):
                separator = "a comma" if path.suffix.lower() == ".csv" else "a tab"
                raise GlossaryError(f"{where}: {line!r} is not a term and its translation separated by "
                                    f"{separator} (or one term, kept as it is)")
            term, target = cells[0], cells[-1]
            if terms.get(term, target) != target:
                raise GlossaryError(f"{where}: {term!r} is listed twice, as {terms[term]!r} and {target!r}")
            terms[term] = target
        return cls(terms, str(path))

    def __len__(self) -> int:
        return len(self.terms)

    def matches(self, text: str) -> list[tuple[int, int, str]]:
        """``(start, end, target term)`` of every term in ``text``, leftmost first, longest at a
        place, no overlaps."""
        if self._pattern is None:
            return []
        return [(m.start(), m.end(), self._outputs[m.group()]) for m in self._pattern.finditer(text)]


def _capitalized(text: str) -> str:
    return text[0].upper() + text[1:]


def as_glossary(glossary: Glossary | Mapping[str, str] | str | Path | None) -> Glossary | None:
    """A Glossary from itself, a mapping of terms, or a file path; None stays None."""
    if glossary is None or isinstance(glossary, Glossary):
        return glossary
    if isinstance(glossary, str | Path):
        return Glossary.load(glossary)
    if isinstance(glossary, Mapping):
        return Glossary(glossary)
    raise TypeError(f"glossary must be a Glossary, a mapping of terms or a file path, "
                    f"not {type(glossary).__name__}")
