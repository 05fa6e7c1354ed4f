"""Front matter of Markdown pages: YAML between ``---`` lines, or TOML between ``+++`` (Hugo).

A page's ``title``, ``description``, ``summary`` and ``subtitle`` string values are prose; keys,
comments and every other value are kept as they are. A translated value is written back quoted
when its syntax needs it, so that YAML or TOML reads back the very string that was written.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from polyseq.documents.protect import Segment

_KEY = r"^(\s*(?:title|description|summary|subtitle)\s*"
# title: value # comment (a YAML comment starts at " #": "C# rocks" has none)
_YAML = re.compile(_KEY + r""":[ \t]+)("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|\S.*?)((?:[ \t]+#.*)?[ \t]*)$""")
# title = "value" # comment: only strings, on one line; other TOML values are kept
_TOML = re.compile(_KEY + r"""=[ \t]*)("(?:[^"\\]|\\.)*"|'[^']*')((?:[ \t]*#.*)?[ \t]*)$""")
_TOML_FENCE = re.compile(r"\+\+\+[ \t]*")
# What YAML (1.1, as PyYAML reads it) takes for a boolean or null rather than a string
_YAML_WORDS = frozenset(["y", "n", "yes", "no", "on", "off", "true", "false", "null"])
_LETTER = re.compile(r"[^\W\d_]")


def toml_as_yaml(lines: list[str]) -> list[str]:
    """``lines`` with a leading TOML block (``+++`` ... ``+++``) shown as YAML's for the
    Markdown parser, which knows only ``---``: its lines blanked, so that none can end it
    early, and as many lines as before, so that line numbers still hold."""
    end = next((k for k in range(1, len(lines)) if _TOML_FENCE.fullmatch(lines[k])), 0)
    if not (lines and _TOML_FENCE.fullmatch(lines[0]) and end):
        return lines
    return ["---", *[""] * (end - 1), "---", *lines[end + 1:]]


def value(line: str, toml: bool, patterns: frozenset[str]) -> tuple[str, int, Segment] | None:
    """The translatable value on a front-matter ``line``: the key with the value left out and
    any comment (what must stay), where the value starts, and the value as a segment."""
    match = (_TOML if toml else _YAML).match(line)
    segment = (_toml_value if toml else _yaml_value)(match.group(2)) if match else None
    if match is None or segment is None:
        return None
    segment.patterns = patterns
    return match.group(1) + "…" + match.group(3), match.start(2), segment


def _yaml_value(value: str) -> Segment | None:
    """A YAML scalar value as a segment, quoted on the way back when YAML needs it."""
    if value[0] == '"' and value.endswith('"') and len(value) > 1 and "\\" not in value:
        text, quote = value[1:-1], "json"
    elif value[0] == "'" and value.endswith("'") and len(value) > 1:
        text, quote = value[1:-1].replace("''", "'"), "single"
    elif value[0] in "|>&*!%@[{#`\"'" or value.rstrip().endswith(":"):
        return None
    else:
        text, quote = value, "plain"
    if not _LETTER.search(text):
        return None

    def finish(parts: Sequence[tuple[str, bool]]) -> str:
        out = "".join(t for t, _ in parts)
        if quote == "single":
            return "'" + out.replace("'", "''") + "'"
        # plain only when YAML reads it back as this string: it starts with a letter (no
        # indicator, number or date), is no boolean or null, has no ": " or " #" and no ":" at
        # the end (a mapping), nothing unprintable
        plain = (bool(_LETTER.match(out)) and out.lower() not in _YAML_WORDS and out.isprintable()
                 and ": " not in out and " #" not in out and not out.endswith((":", " ")))
        return out if quote == "plain" and plain else json.dumps(out, ensure_ascii=False)

    return Segment(text=text, raw=value, finish=finish)


def _toml_value(value: str) -> Segment | None:
    """A TOML string value as a segment: 'literal' or "basic" (one with escapes is kept)."""
    literal = value[0] == "'"
    text = value[1:-1]
    if (not literal and "\\" in text) or not _LETTER.search(text):
        return None

    def finish(parts: Sequence[tuple[str, bool]]) -> str:
        out = "".join(t for t, _ in parts)
        if literal and "'" not in out and out.isprintable():
            return f"'{out}'"
        # a JSON string is a TOML basic string, but for DEL, which TOML wants escaped
        return json.dumps(out, ensure_ascii=False).replace("\x7f", "\\u007f")

    return Segment(text=text, raw=value, finish=finish)
