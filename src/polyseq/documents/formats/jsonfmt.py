"""JSON: translate string values only, optionally only at chosen paths.

The file is parsed by the standard library's JSON decoder, run with its pure-Python scanner and
a string hook that records where each string value sits in the text. Only those string values
are rewritten, re-encoded with ``json.dumps``; keys, numbers, layout and key order stay byte for
byte, so the result parses to the same structure.

Paths select values: ``messages.*.text``, ``items[*].title`` or ``**.label`` (``*`` is one key
or index, ``**`` any number of them, a leading ``$.`` is allowed).

i18next's plural keys (``file_one``, ``file_other``; ``place_ordinal_one`` ...) are a group
(``plural_groups``): given the languages, the group gets the target language's categories as keys
(``Plurals.key_forms``), each value translated for a sample number in place of its ``{{count}}``.
The new keys take the place of the group's first key; every other byte stays as it was.
"""

from __future__ import annotations

import json
import json.decoder
import json.scanner
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from polyseq.documents.plurals import CATEGORIES, Branch, plurals_for
from polyseq.documents.protect import (
    DocumentError,
    Format,
    FormatOptions,
    ParsedDocument,
    Segment,
    from_pieces,
    where,
    with_number,
)

Path = tuple[str | int, ...]


class _Located(str):
    """A decoded string value that remembers its quoted source range."""

    start: int
    end: int


class _Pairs(list):  # type: ignore[type-arg]
    """An object's (key, value) pairs, in order, duplicates kept (a list, to tell from arrays),
    and where each pair is in the text: (key start, value start, value end)."""

    places: list[tuple[int, int, int]]


def _parse_object(s_and_end: tuple[str, int], strict: bool, scan_once: Any, *args: Any) -> Any:
    """The standard library's object parser, told to record where each key and value is."""
    text, start = s_and_end
    values: list[tuple[int, int]] = []

    def scan(string: str, index: int) -> Any:
        value, end = scan_once(string, index)
        values.append((index, end))
        return value, end

    pairs, end = json.decoder.JSONObject(s_and_end, strict, scan, *args)  # type: ignore[attr-defined]
    places, boundary = [], start
    for value_start, value_end in values:
        places.append((text.index('"', boundary), value_start, value_end))  # only ",", space before
        boundary = value_end
    pairs.places = places
    return pairs, end


def _located_string(text: str, end: int, strict: bool = True) -> tuple[_Located, int]:
    value, new_end = json.decoder.scanstring(text, end, strict)  # type: ignore[attr-defined]
    located = _Located(value)
    located.start, located.end = end - 1, new_end
    return located, new_end


def load(text: str, source: str | None = None) -> object:
    """Parse ``text`` with string values as ``_Located`` and objects as ``_Pairs``."""
    decoder = json.JSONDecoder(object_pairs_hook=_Pairs)
    decoder.parse_string = _located_string  # type: ignore[attr-defined]
    decoder.parse_object = _parse_object  # type: ignore[attr-defined]
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


_PLURAL_KEY = re.compile(rf"(.+?)_(ordinal_)?({'|'.join(CATEGORIES)})", re.DOTALL)


@dataclass(frozen=True)
class PluralGroup:
    """i18next's plural keys of one base in an object: category -> the pair's index."""

    base: str
    ordinal: bool
    members: dict[str, int]

    def key(self, category: str) -> str:
        return f"{self.base}_{'ordinal_' if self.ordinal else ''}{category}"

    def label(self, path: Path) -> str:
        """What stands for the group's keys, whatever its categories: ``$.file_<plural>``."""
        return path_text((*path, self.key("<plural>")))


def plural_groups(pairs: Sequence[tuple[str, object]], chosen: Callable[[Path], bool],
                  path: Path = ()) -> list[PluralGroup]:
    """i18next's plural keys in an object: ``BASE_<category>`` or ``BASE_ordinal_<category>``,
    a CLDR category word, grouped by base, where the base has an ``other`` key, each category
    once, and every value is a string chosen by the paths. A group of one key (a lone
    ``x_other``) is left as it is, but the check compares it as a group."""
    found: dict[tuple[str, bool], dict[str, list[int]]] = {}
    for index, (key, _) in enumerate(pairs):
        if match := _PLURAL_KEY.fullmatch(key):
            group = found.setdefault((match[1], bool(match[2])), {})
            group.setdefault(match[3], []).append(index)
    return [PluralGroup(base, ordinal, {c: i[0] for c, i in members.items()})
            for (base, ordinal), members in found.items()
            if "other" in members and all(len(i) == 1 for i in members.values())
            and all(isinstance(pairs[i][1], _Located) and chosen((*path, pairs[i][0]))
                    for [i] in members.values())]


def _category(key: str) -> str:
    match = _PLURAL_KEY.fullmatch(key)
    assert match is not None  # a group's key
    return match[3]


Edit = tuple[int, int, list[str | Segment]]  # text[start:end] is written as these pieces


class _Reader:
    """Walks a parsed file: the edits to its text (a segment for each string value chosen, a
    plural group's keys rewritten) and what is protected."""

    def __init__(self, text: str, options: FormatOptions):
        self.text, self.paths = text, options.json_paths
        self.plurals = plurals_for(options.src_lang, options.tgt_lang)
        self.edits: list[Edit] = []
        self.protected: list[tuple[str, str]] = []

    def chosen(self, path: Path) -> bool:
        return not self.paths or any(path_matches(path, p) for p in self.paths)

    def segment(self, value: _Located, path: Path, form_of: str | None = None) -> Segment:
        return Segment(text=str(value), raw=self.text[value.start:value.end], finish=_encode,
                       where=path_text(path), form_of=form_of)

    def visit(self, node: object, path: Path) -> None:
        if isinstance(node, _Pairs):
            self.object(node, path)
        elif isinstance(node, list):
            for index, value in enumerate(node):
                self.protected.append(("json_key", path_text((*path, index))))
                self.visit(value, (*path, index))
        elif isinstance(node, _Located) and self.chosen(path):
            self.edits.append((node.start, node.end, [self.segment(node, path)]))
        else:
            self.protected.append(("json_value", f"{path_text(path)}={json.dumps(node)}"))

    def object(self, pairs: _Pairs, path: Path) -> None:
        grouped: dict[int, str | None] = {}  # a group's pair: its label, None where retargeted
        for group in plural_groups(pairs, self.chosen, path):
            self.protected.append(("json_key", group.label(path)))
            forms = (self.plurals.key_forms(group.ordinal, list(group.members))
                     if self.plurals is not None and len(group.members) > 1 else None)
            if forms is not None:
                self.retarget(pairs, path, group, forms)
            label = None if forms is not None else group.label(path)
            grouped.update((i, label) for i in group.members.values())
        for index, (key, value) in enumerate(pairs):
            if index not in grouped:
                self.protected.append(("json_key", path_text((*path, key))))
                self.visit(value, (*path, key))
            elif (label := grouped[index]) is not None:  # a group that keeps its keys
                self.edits.append((value.start, value.end, [self.segment(value, (*path, key), label)]))

    def retarget(self, pairs: _Pairs, path: Path, group: PluralGroup, forms: list[Branch]) -> None:
        """The group's keys and values written as the target's forms, at its first key's place
        and spaced as that key is from the next; its other keys removed, with the separator
        before each."""
        text, places = self.text, pairs.places
        plain = {c: self.segment(pairs[i][1], (*path, pairs[i][0]), group.label(path))
                 for c, i in group.members.items()}
        first = min(group.members.values())  # a group has two keys at least: one after it
        gap = text[places[first][2]:places[first + 1][0]]
        pieces: list[str | Segment] = []
        for form in forms:
            segment = plain[form.fallback]
            if form.sample is not None:
                segment = with_number(plain[form.source], form.sample, segment) or segment
            pieces += [gap] if pieces else []
            pieces += [self.key_text(pairs, group, form.category), segment]
        self.edits.append((places[first][0], places[first][2], pieces))
        self.edits += [(places[i - 1][2], places[i][2], []) for i in group.members.values()
                       if i != first]

    def key_text(self, pairs: _Pairs, group: PluralGroup, category: str) -> str:
        """A form's key with the colon and spaces up to its value: the source's own where it has
        the key, else the first key's with its category changed."""
        places, own = pairs.places, group.members.get(category)
        if own is not None:
            return self.text[places[own][0]:places[own][1]]
        first = min(group.members.values())
        head = self.text[places[first][0]:places[first][1]]  # '"file_one": '
        end = head.rindex('"') + 1
        old, new = (f'{group.key(c)[len(group.base):]}"' for c in (_category(pairs[first][0]), category))
        key = head[:end - len(old)] + new if head[:end].endswith(old) else json.dumps(
            group.key(category), ensure_ascii=False)  # the source escapes its suffix: written anew
        return key + head[end:]

    def document(self) -> ParsedDocument:
        pieces: list[str | Segment] = []
        cursor = 0
        for start, end, parts in sorted(self.edits, key=lambda e: e[:2]):
            pieces += [self.text[cursor:start], *parts]
            cursor = end
        pieces.append(self.text[cursor:])
        return from_pieces(pieces, self.protected)


def parse(text: str, options: FormatOptions) -> ParsedDocument:
    reader = _Reader(text, options)
    reader.visit(load(text, options.source), ())
    return reader.document()


FORMAT = Format(
    name="json",
    extensions=(".json",),
    parse=parse,
    description="JSON: string values translated, keys and structure kept",
)
