"""ICU MessageFormat plural and select messages, as syntax and the prose of their branches.

``{count, plural, =0 {no files} one {# file} other {# files}}`` is syntax (the argument, the
type, the selectors, the braces) around branch texts, which are prose: each branch is translated
on its own, as translation tools present them to translators, while the syntax and the ``#``
(the number, in plural branches) come back unchanged. ``choice`` messages (``0#none|1#one``)
are not split: they stay whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# the opening "{arg, type," (and a plural's "offset:n"), then "selector {" before each branch
_HEAD = re.compile(r"\{\s*\w+\s*,\s*(plural|selectordinal|select)\s*,\s*(?:offset\s*:\s*\d+\s*)?")
_SELECTOR = re.compile(r"\s*(?:=\d+|[\w-]+)\s*\{")
# a plural branch's "#" stands for the number (in branches nested in it too)
HASH_KIND = "icu_hash"
HASH_PATTERN = r"#"


@dataclass(frozen=True)
class Message:
    kind: str  # plural, selectordinal or select
    parts: tuple[tuple[str, bool], ...]  # (text, is a branch), syntax and branches in order


def split_message(text: str) -> Message | None:
    """``text`` (a whole message, brace to brace) as syntax and branches; None when it is not a
    well-formed plural or select message."""
    head = _HEAD.match(text)
    if head is None:
        return None
    parts: list[tuple[str, bool]] = []
    syntax, cursor = head.group(0), head.end()
    while selector := _SELECTOR.match(text, cursor):
        end = _closing_brace(text, selector.end())
        if end is None:
            return None
        parts += [(syntax + text[cursor:selector.end()], False), (text[selector.end():end], True)]
        syntax, cursor = "}", end + 1
    if not parts or text[cursor:].strip() != "}":
        return None
    parts.append((syntax + text[cursor:], False))
    return Message(head.group(1), tuple(parts))


def _closing_brace(text: str, start: int) -> int | None:
    """The index of the brace that closes the one opened just before ``start``."""
    depth = 1
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
    return None
