"""Plain text: paragraphs and line structure kept.

Blank lines, indentation, trailing spaces and line endings (``\n``, ``\r\n``, ``\r``) are kept
as they are. A line is a unit of translation, except that a hard-wrapped sentence (a line that
does not end a sentence, followed by one that starts in lower case) is joined with its
continuation lines, translated whole, and re-wrapped over the same number of lines with the
original indentation and trailing spaces.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from polyseq.documents.patterns import PROSE_PATTERNS
from polyseq.documents.protect import (
    Format,
    FormatOptions,
    ParsedDocument,
    Segment,
    from_pieces,
)
from polyseq.documents.segment import rewrap

# Lines end at \r\n, \r or \n only: str.splitlines also breaks at \x0b, \x0c, \x1c-\x1e,
# \x85, U+2028 and U+2029, which are characters inside a line to every editor and to `wc -l`.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
# A line ending like this closes its sentence, so the next line starts a new unit.
_ENDS_SENTENCE = re.compile(r"[.!?:;。！？…][\"'»”’)\]]*\s*$")


def _continues(previous: str, line: str) -> bool:
    body = line.lstrip()
    return bool(body) and body[0].islower() and not _ENDS_SENTENCE.search(previous)


def parse(text: str, options: FormatOptions) -> ParsedDocument:
    lines = _LINE.findall(text)
    pieces: list[str | Segment] = []
    units: list[list[int]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if units and units[-1][-1] == i - 1 and _continues(lines[i - 1], line):
            units[-1].append(i)
        else:
            units.append([i])
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    cursor = 0
    for unit in units:
        segment, start, end = _unit_segment(text, lines, starts, unit)
        pieces.append(text[cursor:start])
        pieces.append(segment)
        cursor = end
    pieces.append(text[cursor:])
    return from_pieces([p for p in pieces if p != ""], [])


def line_parts(line: str) -> tuple[int, int]:
    """Where the content of ``line`` starts and ends: after its indent, before trailing space."""
    body = line.rstrip("\r\n")
    end = len(body.rstrip())
    return len(body) - len(body.lstrip()), end


def _unit_segment(
    text: str, lines: list[str], starts: list[int], unit: list[int]
) -> tuple[Segment, int, int]:
    bounds = [line_parts(lines[i]) for i in unit]
    contents = [lines[i][a:b] for i, (a, b) in zip(unit, bounds, strict=True)]
    start = starts[unit[0]] + bounds[0][0]
    end = starts[unit[-1]] + bounds[-1][1]
    segment = Segment(text=" ".join(contents), raw=text[start:end], patterns=PROSE_PATTERNS,
                      where=f"line {unit[0] + 1}")
    if len(unit) > 1:
        # What lies between one line's content and the next one's, byte for byte: trailing
        # spaces, the line ending and the indent.
        gaps = [text[starts[i] + b:starts[j] + a]
                for i, j, (_, b), (a, _) in zip(unit, unit[1:], bounds, bounds[1:], strict=False)]

        def finish(parts: Sequence[tuple[str, bool]]) -> str:
            # Words hold no "\n" (a line's content has none), so it marks rewrap's line breaks.
            wrapped = rewrap(parts, len(unit), "\n", "").split("\n")
            return wrapped[0] + "".join(g + w for g, w in zip(gaps, wrapped[1:], strict=False))

        segment.finish = finish
    return segment, start, end


FORMAT = Format(
    name="plain",
    extensions=(".txt", ".text"),
    parse=parse,
    description="plain text: lines and paragraphs kept",
)
