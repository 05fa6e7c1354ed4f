"""Text correction with a same-language model: paragraphs corrected sentence by sentence with
their spacing kept, and the edits between a text and its correction.

A corrector is a Translator whose source and target language are the same; `Translator.correct`
runs it (lossless aggressive decoding by default: greedy's output in fewer passes, since most of
the output copies the input).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class TextEdit:
    start: int  # character offsets of the replaced text in the source (equal for an insertion;
    end: int  # a deletion's span takes the space that separated it)
    original: str
    correction: str  # an insertion carries the space that separates it from its neighbour


def text_edits(source: str, corrected: str) -> list[TextEdit]:
    """The word-level edits that turn `source` into `corrected`, as spans of the source."""
    words = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(source)]
    new = [m.group() for m in _WORD.finditer(corrected)]
    matcher = difflib.SequenceMatcher(a=[w for _, _, w in words], b=new, autojunk=False)
    edits: list[TextEdit] = []
    for tag, a_start, a_end, b_start, b_end in matcher.get_opcodes():
        if tag == "equal":
            continue
        inserted = " ".join(new[b_start:b_end])
        if a_start < a_end:
            start, end = words[a_start][0], words[a_end - 1][1]
            if b_start == b_end:  # a deletion takes the space before it (after it, first in the text),
                if a_start > 0:  # as an insertion brings one: applying the edits leaves no double space
                    start = words[a_start - 1][1]
                elif a_end < len(words):
                    end = words[a_end][0]
        elif a_start < len(words):  # an insertion before the next word, with its space
            start = end = words[a_start][0]
            inserted += " "
        else:  # at the end of the text
            start = end = len(source.rstrip())
            inserted = (" " if start else "") + inserted
        edits.append(TextEdit(start, end, source[start:end], inserted))
    return edits


def correct_paragraphs(correct: Callable[[list[str]], list[str]], paragraphs: Sequence[str],
                       lang: str) -> list[str]:
    """Each paragraph with its sentences corrected (split by `polyseq.documents.segment`) and the
    text between them kept byte for byte; one call of `correct` for all the sentences."""
    from polyseq.documents.segment import split_sentences

    ranges = [split_sentences(paragraph, lang) for paragraph in paragraphs]
    sentences = [paragraph[start:end] for paragraph, spans in zip(paragraphs, ranges, strict=True)
                 for start, end in spans]
    corrected = iter(correct(sentences))
    out: list[str] = []
    for paragraph, spans in zip(paragraphs, ranges, strict=True):
        pieces, position = [], 0
        for start, end in spans:
            pieces += [paragraph[position:start], next(corrected)]
            position = end
        out.append("".join(pieces) + paragraph[position:])
    return out
