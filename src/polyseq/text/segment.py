"""Segmenting: sentences that fit the model, and lines that keep a paragraph's shape.

This file owns two text utilities used by selective translation (``polyseq.documents``):

- ``split_sentences`` cuts a paragraph into sentence pieces with pysbd (a rule-based splitter
  that knows abbreviations, decimals and initials in 20+ languages), then cuts any piece longer
  than ``max_chars`` at clause or word boundaries, so every piece fits the model. The pieces are
  returned as ``(start, end)`` ranges: whatever lies between them (spaces, newlines) is kept
  byte for byte by the caller, so joining back restores the original spacing.
- ``fill_lines`` re-flows a translated paragraph over lines no wider than the original, treating
  protected spans as unbreakable words, for formats whose paragraphs were hard-wrapped.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

import pysbd

# pysbd has rules for these languages; others use the English rules, which are a fair
# default for any language that ends sentences with . ! ? (a wrong split only costs context).
_PYSBD_LANGS = frozenset(
    "am ar bg da de el en es fa fr hi hy it ja kk mr my nl pl ru sk ur zh".split()
)
# Fast path: without a sentence-final mark followed by more text there is nothing to split,
# which spares pysbd (about 1 ms a paragraph) on the many short segments of real documents.
_MAYBE_BOUNDARY = re.compile(r"[.!?。！？…][\"'»”’)\]]*\s+\S")
# Where a too-long sentence may be cut, best first: after clause punctuation, then any space.
_CLAUSE_BREAK = re.compile(r"[,;:—–)]\s+")
_SPACE = re.compile(r"\s+")


@functools.cache
def _segmenter(lang: str) -> pysbd.Segmenter:
    code = lang.split("-")[0].split("_")[0].lower()
    return pysbd.Segmenter(language=code if code in _PYSBD_LANGS else "en", clean=False)


def split_sentences(text: str, lang: str = "en", max_chars: int | None = None) -> list[
    tuple[int, int]
]:
    """Return ``(start, end)`` ranges of the sentences of ``text``, whitespace excluded.

    Every non-space character of ``text`` lies in exactly one range, and the ranges are in
    order, so ``text`` is rebuilt by keeping the gaps between them as they were.
    """
    ranges = [(s, e) for s, e in _sentence_ranges(text, lang) if s < e]
    if max_chars is None:
        return ranges
    fitted: list[tuple[int, int]] = []
    for start, end in ranges:
        fitted.extend(_fit(text, start, end, max_chars))
    return fitted


def _sentence_ranges(text: str, lang: str) -> list[tuple[int, int]]:
    stripped = _strip_range(text, 0, len(text))
    if stripped[0] == stripped[1]:
        return []
    if not _MAYBE_BOUNDARY.search(text):
        return [stripped]
    ranges: list[tuple[int, int]] = []
    cursor = 0
    for sentence in _segmenter(lang).segment(text):
        core = sentence.strip()
        if not core:
            continue
        found = text.find(core, cursor)
        if found < 0:
            # pysbd altered the text (it should not with clean=False): keep the rest whole
            # rather than lose or duplicate characters.
            break
        ranges.append((found, found + len(core)))
        cursor = found + len(core)
    rest = _strip_range(text, cursor, len(text))
    if rest[0] < rest[1]:
        ranges.append(rest)
    return ranges


def _strip_range(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _fit(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut ``text[start:end]`` into pieces of at most ``max_chars`` where it can be cut.

    A word longer than ``max_chars`` becomes a piece of its own, uncut: cutting inside a word
    would change it, and the translator reports such input instead.
    """
    pieces: list[tuple[int, int]] = []
    while end - start > max_chars:
        cut = _best_cut(text, start, start + max_chars)
        if cut is None:  # a word longer than the limit: it becomes a piece of its own
            space = _SPACE.search(text, start, end)
            if space is None:
                break
            cut = space.start()
        left = _strip_range(text, start, cut)
        if left[0] < left[1]:
            pieces.append(left)
        start = _strip_range(text, cut, end)[0]
    if start < end:
        pieces.append((start, end))
    return pieces


def _best_cut(text: str, start: int, limit: int) -> int | None:
    window = text[start:limit + 1]
    for pattern in (_CLAUSE_BREAK, _SPACE):
        cuts = [m.end() if pattern is _CLAUSE_BREAK else m.start() for m in pattern.finditer(window)]
        cuts = [c for c in cuts if 0 < c <= limit - start]
        if cuts:
            return start + cuts[-1]
    return None


def fill_lines(
    words: Sequence[str],
    width: int,
    keep_together: Callable[[str], bool] = lambda line: False,
) -> list[str]:
    """Greedily fill lines no wider than ``width`` (a longer word gets a line of its own).

    ``words`` are unbreakable (the caller glues protected spans to their neighbours).
    ``keep_together(line)`` says a line must not start a new line (for Markdown: a line that
    would read as a list item or heading); such a word stays on the previous line instead.
    """
    lines: list[str] = []
    for word in words:
        if lines and (len(lines[-1]) + 1 + len(word) <= width or keep_together(word)):
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def words_of(parts: Sequence[tuple[str, bool]]) -> list[str]:
    """Split restored parts into words; protected parts (``True``) never break inside.

    Whitespace in text parts separates words; a protected part joins the word it touches.
    """
    words: list[str] = []
    glue = False  # whether the next text continues the last word (no space in between)
    for text, protected in parts:
        if not text:
            continue
        if protected:
            if glue and words:
                words[-1] += text
            else:
                words.append(text)
            glue = True
            continue
        chunks = _SPACE.split(text)
        for i, chunk in enumerate(chunks):
            if not chunk:
                continue
            if i == 0 and glue and words:
                words[-1] += chunk
            else:
                words.append(chunk)
        glue = bool(chunks[-1])
    return words


def rewrap(
    parts: Sequence[tuple[str, bool]],
    width: int,
    newline: str,
    prefix: str,
    keep_together: Callable[[str], bool] = lambda word: False,
) -> str:
    """Join restored parts into lines no wider than ``width``, each after the first starting
    with ``prefix`` (the indent or quote marker of the original continuation lines)."""
    lines = fill_lines(words_of(parts), max(width, 1), keep_together)
    return (newline + prefix).join(lines)
