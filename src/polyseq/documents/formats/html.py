"""HTML: text nodes and the alt / title / placeholder attributes translated, all else kept.

The standard library's ``html.parser`` reads the document; each event's source range is kept so
that tags, other attributes, comments and the content of ``<script>``, ``<style>``, ``<pre>``
and ``<code>`` are written back byte for byte. Text between block-level tags is one segment:
inline tags inside a sentence (``<b>``, ``<a href>``, ``<code>...</code>``) become protected
holes in it, so the sentence is translated whole and the tags travel with it.
"""

from __future__ import annotations

import bisect
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser

from polyseq.documents.protect import (
    Format,
    FormatOptions,
    Hole,
    ParsedDocument,
    Segment,
    from_pieces,
)

TRANSLATABLE_ATTRIBUTES = frozenset({"alt", "title", "placeholder"})
# Elements whose content is never prose; inline ones become one hole inside their sentence.
RAW_BLOCK = frozenset({"script", "style", "pre", "textarea", "svg", "math", "template"})
RAW_INLINE = frozenset({"code", "kbd", "samp", "var", "tt"})
BLOCK = frozenset(
    [
        "html", "head", "body", "title", "meta", "link", "base", "p", "div", "section", "article",
        "header", "footer", "nav", "aside", "main", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol",
        "li", "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption",
        "colgroup", "col", "blockquote", "figure", "figcaption", "form", "fieldset", "legend",
        "hr", "address", "details", "summary", "option", "optgroup", "select", "iframe", "video",
        "audio", "source", "canvas", "noscript", "object", "embed", "center",
    ]
)
# Patterns that still apply inside HTML text: tags and entities are the parser's business.
HTML_PATTERNS = frozenset({"sentinel_char", "icu_message", "placeholder", "include", "url", "email"})
_ATTR = re.compile(
    r"""(?P<name>[^\s"'>/=]+)\s*=\s*(?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<uq>[^\s"'=<>`]+))"""
)
_LETTER = re.compile(r"[^\W\d_]")
_STRAY_TAG = re.compile(r"<[^\s<]*")


def escape_text(text: str) -> str:
    """Escape translated prose for an HTML text node: ``&`` and ``<`` (a ``<`` the source had
    unescaped is a protected span, not prose), and no-break spaces, to keep them visible; a
    bare ``>`` is valid text and stays as the source wrote it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("\xa0", "&nbsp;")


@dataclass
class _Event:
    kind: str  # start, startend, end, data, comment, other
    start: int
    tag: str = ""
    data: str = ""
    end: int = 0


class _Recorder(HTMLParser):
    """Records every parser event with its start offset in the source."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        # getpos() counts "\n" alone; str.splitlines would also break at \r, \x0c, U+2028 ...
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.events: list[_Event] = []

    def _add(self, kind: str, tag: str = "", data: str = "") -> None:
        line, column = self.getpos()
        self.events.append(_Event(kind, self.line_starts[line - 1] + column, tag, data))

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self._add("start", tag)

    def handle_startendtag(self, tag: str, attrs: object) -> None:
        self._add("startend", tag)

    def handle_endtag(self, tag: str) -> None:
        self._add("end", tag)

    def handle_data(self, data: str) -> None:
        self._add("data", data=data)

    def handle_comment(self, data: str) -> None:
        self._add("comment")

    def handle_decl(self, decl: str) -> None:
        self._add("other")

    def unknown_decl(self, data: str) -> None:
        self._add("other")

    def handle_pi(self, data: str) -> None:
        self._add("other")


def events(text: str) -> list[_Event]:
    """Parser events with their source ranges; together they cover ``text`` exactly."""
    recorder = _Recorder(text)
    recorder.feed(text)
    recorder.close()
    found = recorder.events
    for event, following in zip(found, found[1:], strict=False):
        event.end = following.start
    if found:
        found[-1].end = len(text)
    return found


def tag_parts(raw: str) -> tuple[str | Segment, ...]:
    """A start tag as raw text and segments for its translatable attribute values."""
    parts: list[str | Segment] = []
    cursor = 0
    name_end = re.match(r"<\s*[^\s/>]+", raw)
    for m in _ATTR.finditer(raw, name_end.end() if name_end else 0):
        if m.group("name").lower() not in TRANSLATABLE_ATTRIBUTES:
            continue
        group = next(g for g in ("dq", "sq", "uq") if m.group(g) is not None)
        value = m.group(group)
        if not _LETTER.search(value):
            continue
        # The segment takes the quotes too: a translated unquoted value gets quotes, and the
        # tag's key (what a preservation check compares) must not change with them.
        quote = "" if group == "uq" else raw[m.start(group) - 1]
        parts.append(raw[cursor:m.start(group) - len(quote)])
        parts.append(_attribute_segment(value, quote))
        cursor = m.end(group) + len(quote)
    parts.append(raw[cursor:])
    return tuple(p for p in parts if p != "")


def _attribute_segment(value: str, quote: str) -> Segment:
    """An attribute value with its quotes (none when unquoted); a translation is always
    quoted, since it may hold a space."""
    mark = quote or '"'

    def finish(parts: Sequence[tuple[str, bool]]) -> str:
        return mark + html.escape("".join(t for t, _ in parts), quote=True) + mark

    return Segment(text=html.unescape(value), raw=f"{quote}{value}{quote}", patterns=HTML_PATTERNS,
                   finish=finish, where="attribute")


def _key(parts: Sequence[str | Segment]) -> str:
    return "".join(p if isinstance(p, str) else "…" for p in parts)


def _matching_end(found: list[_Event], index: int) -> int:
    """Index of the end tag closing ``found[index]``, or the last event when it is unclosed."""
    tag, depth = found[index].tag, 0
    for j in range(index, len(found)):
        event = found[j]
        if event.tag == tag and event.kind == "start":
            depth += 1
        elif event.tag == tag and event.kind == "end":
            depth -= 1
            if depth == 0:
                return j
    return len(found) - 1


class _Builder:
    """Groups events into pieces: raw text, and one segment per run of inline content."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.pieces: list[str | Segment] = []
        self.protected: list[tuple[str, str]] = []
        self.run: list[tuple[int, int, str, str | None]] = []  # start, end, kind, data

    def raw(self, start: int, end: int, kind: str | None = None) -> None:
        self.flush()
        chunk = self.text[start:end]
        if kind == "html_tag":
            parts = tag_parts(chunk)
            self.pieces.extend(parts)
            self.protected.append((kind, _key(parts)))
            return
        if kind:
            self.protected.append((kind, chunk))
        self.pieces.append(chunk)

    def inline(self, start: int, end: int, kind: str, data: str | None = None) -> None:
        self.run.append((start, end, kind, data))

    def flush(self) -> None:
        run, self.run = self.run, []
        if not run:
            return
        has_words = any(d is not None and _LETTER.search(d) for *_, d in run)
        has_nested = any(d is None and k == "html_tag" and len(tag_parts(self.text[s:e])) > 1
                         for s, e, k, d in run)
        if not has_words and not has_nested:
            for s, e, k, d in run:
                if d is None:
                    self.protected.append((k, self.text[s:e]))
            self.pieces.append(self.text[run[0][0]:run[-1][1]])
            return
        self.pieces.append(self._segment(run))

    def _segment(self, run: list[tuple[int, int, str, str | None]]) -> Segment:
        origin = run[0][0]
        text: list[str] = []
        holes: list[Hole] = []
        length = 0
        for start, end, kind, data in run:
            if data is not None:
                text.append(data)
                length += len(data)
                continue
            raw = self.text[start:end]
            parts = tag_parts(raw) if kind == "html_tag" else (raw,)
            holes.append(Hole(length, length + len(raw), kind, parts, start - origin, end - origin))
            text.append(raw)
            length += len(raw)
        line = bisect.bisect_right(self.line_starts, origin)
        return Segment(
            text="".join(text),
            raw=self.text[origin:run[-1][1]],
            holes=tuple(holes),
            patterns=HTML_PATTERNS,
            escape=escape_text,
            where=f"line {line}",
        )


def _data(builder: _Builder, text: str, event: _Event) -> None:
    """Text, where a stray ``<`` (the parser's data, not a tag) stays raw with what follows
    it up to a space: escaped to ``&lt;`` it would read differently (a Markdown HTML block)."""
    raw = text[event.start:event.end]
    if "<" not in raw:
        builder.inline(event.start, event.end, "text", event.data)
        return
    cursor = 0
    for match in _STRAY_TAG.finditer(raw):
        if match.start() > cursor:
            chunk = raw[cursor:match.start()]
            builder.inline(event.start + cursor, event.start + match.start(), "text",
                           html.unescape(chunk))
        builder.inline(event.start + match.start(), event.start + match.end(), "markup")
        cursor = match.end()
    if cursor < len(raw):
        builder.inline(event.start + cursor, event.end, "text", html.unescape(raw[cursor:]))


def fragment(text: str) -> tuple[list[str | Segment], list[tuple[str, str]]]:
    """Pieces and protected spans of an HTML text (a whole page or a block inside Markdown)."""
    found = events(text)
    builder = _Builder(text)
    i = 0
    while i < len(found):
        event = found[i]
        if event.kind == "start" and event.tag in RAW_BLOCK | RAW_INLINE:
            j = _matching_end(found, i)
            if event.tag in RAW_BLOCK:
                builder.raw(event.start, found[j].end, "code_block")
            else:
                builder.inline(event.start, found[j].end, "inline_code")
            i = j + 1
            continue
        if event.kind == "data":
            _data(builder, text, event)
        elif event.kind in ("start", "startend", "end") and event.tag in BLOCK:
            builder.raw(event.start, event.end, "html_tag")
        elif event.kind in ("start", "startend", "end"):
            builder.inline(event.start, event.end, "html_tag")
        elif event.kind == "comment":
            builder.inline(event.start, event.end, "html_comment")
        else:
            builder.raw(event.start, event.end, "html_decl")
        i += 1
    builder.flush()
    return builder.pieces, builder.protected


def parse(text: str, options: FormatOptions) -> ParsedDocument:
    pieces, protected = fragment(text)
    return from_pieces(pieces, protected)


FORMAT = Format(
    name="html",
    extensions=(".html", ".htm", ".xhtml"),
    parse=parse,
    description="HTML: text and alt/title/placeholder translated, tags and code kept",
)
