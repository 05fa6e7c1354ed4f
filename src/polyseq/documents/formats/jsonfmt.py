"""JSON: translate string values only, optionally only at chosen paths.

The file is parsed by the standard library's JSON decoder, run with its pure-Python scanner and
a string hook that records where each string value sits in the text. Only those string values
are rewritten, re-encoded with ``json.dumps``; keys, numbers, layout and key order stay byte for
byte, so the result parses to the same structure.

Paths select values: ``messages.*.text``, ``items[*].title`` or ``**.label`` (``*`` is one key
or index, ``**`` any number of them, a leading ``$.`` is allowed).
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import re
from collections.abc import Iterator, Sequence

from polyseq.documents.protect import (
    DocumentError,
    Format,
    FormatOptions,
    ParsedDocument,
    Segment,
    from_pieces,
    where,
)

Path = tuple[str | int, ...]


class _Located(str):
    """A decoded string value that remembers its quoted source range."""

    start: int
    end: int


class _Pairs(list):  # type: ignore[type-arg]
    """An object's (key, value) pairs, in order, duplicates kept (a list, to tell from arrays)."""


def _located_string(text: str, end: int, strict: bool = True) -> tuple[_Located, int]:
    value, new_end = json.decoder.scanstring(text, end, strict)  # type: ignore[attr-defined]
    located = _Located(value)
    located.start, located.end = end - 1, new_end
    return located, new_end


def load(text: str, source: str | None = None) -> object:
    """Parse ``text`` with string values as ``_Located`` and objects as ``_Pairs``."""
    decoder = json.JSONDecoder(object_pairs_hook=_Pairs)
    decoder.parse_string = _located_string  # type: ignore[attr-defined]
    # The C scanner ignores Python-level hooks; the pure-Python one calls parse_string.
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    try:
        return decoder.decode(text)
    except json.JSONDecodeError as err:
        place = where(source, f"line {err.lineno}, column {err.colno}")
        raise DocumentError(
            f"{place}: not valid JSON ({err.msg}). Fix the file so that it parses "
            "(python -m json.tool FILE shows the same error) and try again."
        ) from err
    except RecursionError as err:
        raise DocumentError(
            f"{where(source, 'JSON')}: nested too deeply to parse; flatten the file."
        ) from err


def walk(node: object, path: Path = ()) -> Iterator[tuple[Path, object]]:
    """Every leaf value with its path; objects and arrays are descended into."""
    if isinstance(node, _Pairs):
        for key, value in node:
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))
    else:
        yield path, node


def key_paths(node: object, path: Path = ()) -> Iterator[Path]:
    """Every key path (objects' keys and array indices), in document order."""
    if isinstance(node, _Pairs):
        for key, value in node:
            yield (*path, key)
            yield from key_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*path, index)
            yield from key_paths(value, (*path, index))


def path_text(path: Path) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _pattern_parts(pattern: str) -> list[str]:
    pattern = re.sub(r"^\$\.?", "", pattern.strip())
    pattern = re.sub(r"\[(\*|\d+)\]", r".\1", pattern)
    return [p for p in pattern.split(".") if p]


def path_matches(path: Path, pattern: str) -> bool:
    """Whether ``path`` matches a dotted glob pattern (``*`` one step, ``**`` any steps)."""
    return _match([str(p) for p in path], _pattern_parts(pattern))


def _match(path: list[str], parts: list[str]) -> bool:
    if not parts:
        return not path
    head, rest = parts[0], parts[1:]
    if head == "**":
        return any(_match(path[i:], rest) for i in range(len(path) + 1))
    return bool(path) and head in ("*", path[0]) and _match(path[1:], rest)


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _encode(parts: Sequence[tuple[str, bool]]) -> str:
    """A JSON string; a lone surrogate (the source's "\\ud800", protected from the model) is
    written back as that escape, since json.dumps leaves it raw and UTF-8 cannot hold it."""
    text = json.dumps("".join(text for text, _ in parts), ensure_ascii=False)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def parse(text: str, options: FormatOptions) -> ParsedDocument:
    tree = load(text, options.source)
    pieces: list[str | Segment] = []
    protected = [("json_key", path_text(p)) for p in key_paths(tree)]
    cursor = 0
    for path, value in walk(tree):
        chosen = not options.json_paths or any(path_matches(path, p) for p in options.json_paths)
        if not isinstance(value, _Located) or not chosen:
            protected.append(("json_value", f"{path_text(path)}={json.dumps(value)}"))
            continue
        pieces.append(text[cursor:value.start])
        pieces.append(
            Segment(
                text=str(value),
                raw=text[value.start:value.end],
                finish=_encode,
                where=path_text(path),
            )
        )
        cursor = value.end
    pieces.append(text[cursor:])
    return from_pieces(pieces, protected)


FORMAT = Format(
    name="json",
    extensions=(".json",),
    parse=parse,
    description="JSON: string values translated, keys and structure kept",
)
