"""Plain text: paragraphs and line structure kept.

Blank lines, indentation, trailing spaces and line endings are kept as they are. A line is a
unit of translation, except that a hard-wrapped sentence (a line that does not end a sentence,
followed by one that starts in lower case) is joined with its continuation lines, translated
whole, and re-wrapped over the same number of lines with the original indentation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from polyseq.documents.protect import Format, FormatOptions, ParsedDocument, Segment, from_pieces
from polyseq.documents.segment import rewrap

# A line ending like this closes its sentence, so the next line starts a new unit.
_ENDS_SENTENCE = re.compile(r"[.!?:;。！？…][\"'»”’)\]]*\s*$")


def _continues(previous: str, line: str) -> bool:
    body = line.lstrip()
    return bool(body) and body[0].islower() and not _ENDS_SENTENCE.search(previous)


def parse(text: str, options: FormatOptions) -> ParsedDocument:
    lines = text.splitlines(keepends=True)
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
    segment = Segment(text=" ".join(contents), raw=text[start:end], where=f"line {unit[0] + 1}")
    if len(unit) > 1:
        first = lines[unit[0]]
        newline = first[len(first.rstrip("\r\n")):] or "\n"
        prefix = lines[unit[1]][: bounds[1][0]]

        def finish(parts: Sequence[tuple[str, bool]]) -> str:
            return rewrap(parts, len(unit), newline, prefix)

        segment.finish = finish
    return segment, start, end


FORMAT = Format(
    name="plain",
    extensions=(".txt", ".text"),
    parse=parse,
    description="plain text: lines and paragraphs kept",
)
