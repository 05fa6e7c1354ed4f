"""Segmenting: sentences that fit the model, and lines that keep a paragraph's shape.

This file owns two text utilities used by selective translation (``polyseq.documents``):

- ``split_sentences`` cuts a paragraph into sentence pieces with pysbd (a rule-based splitter
  that knows abbreviations, decimals and initials in 20+ languages), then cuts any piece longer
  than ``max_chars`` at clause or word boundaries, so every piece fits the model. The pieces are
  returned as ``(start, end)`` ranges: whatever lies between them (spaces, newlines) is kept
  byte for byte by the caller, so joining back restores the original spacing.
- ``rewrap`` re-flows a translated paragraph over as many lines as the original had, treating
  protected spans as unbreakable words, for formats whose paragraphs were hard-wrapped.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

# pysbd has rules for these languages; others use the English rules, which are a fair
# default for any language that ends sentences with . ! ? (a wrong split only costs context).
_PYSBD_LANGS = frozenset(
    [
        "am", "ar", "bg", "da", "de", "el", "en", "es", "fa", "fr", "hi", "hy", "it", "ja", "kk",
        "mr", "my", "nl", "pl", "ru", "sk", "ur", "zh",
    ]
)
# Fast path: without a sentence-final mark followed by more text there is nothing to split,
# which spares pysbd (about 1 ms a paragraph) on the many short segments of real documents.
# Chinese and Japanese write no space after their full-width marks.
_MAYBE_BOUNDARY = re.compile(r"[.!?。！？…][\"'»”’)\]]*\s+\S|[。！？][」』\"'»”’）)\]]*\S")
# Where a too-long sentence may be cut, best first: after clause punctuation, then any space.
_CLAUSE_BREAK = re.compile(r"[,;:—–)]\s+")
_SPACE = re.compile(r"\s+")


@functools.cache
def _segmenter(lang: str) -> Any:
    import pysbd  # the "documents" extra; imported when a paragraph needs splitting

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
        # after clause punctuation (its space goes with it), else at a space
        ends = pattern is _CLAUSE_BREAK
        cuts = [m.end() if ends else m.start() for m in pattern.finditer(window)]
        cuts = [c for c in cuts if 0 < c <= limit - start]
        if cuts:
            return start + cuts[-1]
    return None


def fill_lines(
    words: Sequence[str],
    width: int,
    keep_together: Callable[[str], bool] = lambda word: False,
) -> list[str]:
    """Greedily fill lines no wider than ``width`` (a longer word gets a line of its own).

    ``words`` are unbreakable (the caller glues protected spans to their neighbours).
    ``keep_together(word)`` says a word must not start a line (for Markdown: one that would
    read as a list marker or heading); such a word stays on the previous line instead.
    """
    return [" ".join(line) for line in _fill(words, width, keep_together)]


def _fill(
    words: Sequence[str], width: int, keep_together: Callable[[str], bool]
) -> list[list[str]]:
    lines: list[list[str]] = []
    length = 0
    for word in words:
        if lines and (length + 1 + len(word) <= width or keep_together(word)):
            lines[-1].append(word)
            length += 1 + len(word)
        else:
            lines.append([word])
            length = len(word)
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
    lines: int,
    newline: str,
    prefix: str,
    keep_together: Callable[[str], bool] = lambda word: False,
) -> str:
    """Join restored parts over ``lines`` lines of even width (fewer only when there are too
    few words), each after the first starting with ``prefix`` (the indent or quote marker of
    the original continuation lines): a re-flowed paragraph keeps its line count."""
    words = words_of(parts)
    low, high = max((len(w) for w in words), default=1), max(sum(len(w) + 1 for w in words), 1)
    while low < high:  # the narrowest width that still fits in ``lines`` lines
        middle = (low + high) // 2
        if len(_fill(words, middle, keep_together)) <= lines:
            high = middle
        else:
            low = middle + 1
    filled = _split_to(_fill(words, low, keep_together), lines, keep_together)
    filled = filled or [[""]]
    return (newline + prefix).join(" ".join(line) for line in filled)


def _split_to(
    lines: list[list[str]], count: int, keep_together: Callable[[str], bool]
) -> list[list[str]]:
    """Split the longest lines at a word boundary until there are ``count`` lines."""
    while len(lines) < count:
        order = sorted(range(len(lines)), key=lambda i: -len(" ".join(lines[i])))
        for i in order:
            cuts = [k for k in range(1, len(lines[i])) if not keep_together(lines[i][k])]
            if cuts:
                middle = min(cuts, key=lambda k: abs(k - len(lines[i]) / 2))
                lines[i:i + 1] = [lines[i][:middle], lines[i][middle:]]
                break
        else:
            return lines  # no line can be split any more
    return lines
