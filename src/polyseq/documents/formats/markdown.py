"""Markdown: prose translated; code, URLs, markup and layout kept byte for byte.

markdown-it-py finds the blocks (with their source lines): paragraphs, headings, list items,
table cells, admonitions, front matter, fenced and indented code, math, HTML blocks. Prose
blocks become segments; everything else is kept as it is. Inside a prose block the inline
parser runs with its rules wrapped to record where each construct starts and ends in the
source, so that inline code, link targets, inline HTML, emphasis markers, entities and math
become protected holes while link text and image alt text stay translatable. HTML blocks are
handed to the HTML format; FastAPI / MkDocs extras are recognised line by line: include
directives ``{* file *}`` and heading anchors ``{ #id }`` (patterns in ``protect``), and
``/// type | Title`` blocks, whose title is translated. GitHub's alert markers (``> [!NOTE]``)
and task-list boxes (``- [x]``) are kept; front matter, YAML or TOML, is read by ``front_matter``.
Translated prose is written back so that it cannot change the blocks: a first word that would
start one (``1.``, ``-``, ``#``) is escaped, as is a pipe in a table cell.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from mdit_py_plugins.admon import admon_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.front_matter import front_matter_plugin

from polyseq.documents.formats import front_matter, html
from polyseq.documents.protect import (
    DocumentError,
    Format,
    FormatOptions,
    Hole,
    ParsedDocument,
    Segment,
    from_pieces,
    where,
)
from polyseq.documents.segment import rewrap, words_of

MD_PATTERNS = frozenset({"sentinel_char", "include", "icu_message", "placeholder", "anchor", "url", "email",
                         "footnote"})
_RECORDED = ("backticks", "link", "image", "autolink", "html_inline", "entity", "emphasis",
             "strikethrough", "math_inline")
_ENV_KEY = "polyseq_recording"
_LINE = re.compile(r"([^\r\n]*)(\r\n|\r|\n|$)")
# pymdownx "blocks" (FastAPI docs): /// tip | Title ... ///, and //// tab | Title
_DIRECTIVE = re.compile(r"^(?P<head>\s*/{3,}\s*[\w-]*[^|\n]*?(?:\|\s*)?)(?P<title>[^|\n]*?)\s*$")
_ADMONITION = re.compile(r'^(?P<head>\s*(?:!!!|\?\?\?\+?)\s+[^"\n]*")(?P<title>[^"\n]*)"')
_LETTER = re.compile(r"[^\W\d_]")
_NEWLINE = re.compile(r"\r\n|\r|\n")
_HARD_BREAK = re.compile(r"\\?[ \t]*(?:\r\n|\r|\n)[ \t>]*")  # a line_break hole: "  \n> "
# GitHub alerts: the marker alone on the first line of a blockquote; task-list checkboxes
_ALERT = re.compile(r"\[!(?:NOTE|TIP|IMPORTANT|WARNING|CAUTION)\][ \t]*", re.I)
_TASK = re.compile(r"\[[ xX]\](?:[ \t]+|$)")
_RAW_OPEN = re.compile(r"<(code|kbd|samp|var|tt|script|style)\b[^>]*(?<!/)>", re.I)
# A word that would read as Markdown syntax at the start of a line must not start one.
_STARTS_BLOCK = re.compile(
    r"^(?:#{1,6}|[-+*]|\d{1,9}[.)]|=+|-+|_+|\*+)$|^(?:>|\||```|~~~|<|/{3}|!!!|\?\?\?|\$\$|\{\*)"
)


@dataclass
class _Record:
    rule: str
    start: int
    end: int
    tokens: list[Token]
    lengths: list[int]  # each token's content length when pushed (before pair matching)
    label_end: int = -1


@dataclass
class _Recording:
    state: StateInline
    records: list[_Record] = field(default_factory=list)


def _recorded(name: str, rule: Callable[[StateInline, bool], bool]) -> Callable[..., bool]:
    def wrapped(state: StateInline, silent: bool) -> bool:
        recording = state.env.get(_ENV_KEY)
        if silent or recording is None or recording.state is not state:
            return rule(state, silent)
        start, before = state.pos, len(state.tokens)
        label_end = -1
        if name == "link" and state.src[start] == "[":
            label_end = state.md.helpers.parseLinkLabel(state, start, True)
        elif name == "image" and state.src.startswith("![", start):
            label_end = state.md.helpers.parseLinkLabel(state, start + 1, False)
        if not rule(state, silent):
            return False
        tokens = state.tokens[before:]
        recording.records.append(
            _Record(name, start, state.pos, tokens, [len(t.content) for t in tokens], label_end)
        )
        return True

    return wrapped


@functools.cache
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    md.use(front_matter_plugin).use(admon_plugin)
    md.use(dollarmath_plugin, allow_space=False, allow_digits=False, double_inline=True)
    md.disable("inline")  # the core rule: we run the inline parser ourselves, per prose run
    md.inline.ruler2.disable("fragments_join")  # it merges tokens we still need to tell apart
    for rule in md.inline.ruler.__rules__:
        if rule.name in _RECORDED:
            md.inline.ruler.at(rule.name, _recorded(rule.name, rule.fn))
    return md


def _inline_holes(src: str, env: dict[str, object]) -> list[tuple[int, int, str]]:
    """``(start, end, kind)`` of the non-prose constructs in inline Markdown ``src``."""
    md = _parser()
    state = StateInline(src, md, env, [])
    recording = _Recording(state)
    env[_ENV_KEY] = recording
    try:
        md.inline.tokenize(state)
        for rule in md.inline.ruler2.getRules(""):
            rule(state)
    finally:
        del env[_ENV_KEY]
    holes: list[tuple[int, int, str]] = []
    for record in recording.records:
        holes.extend(_record_holes(src, record))
    holes.sort(key=lambda h: (h[0], -h[1]))
    outer: list[tuple[int, int, str]] = []
    for hole in holes:  # a hole inside another one (code in a protected link) is covered
        if not outer or hole[0] >= outer[-1][1]:
            outer.append(hole)
    return _raw_elements(src, outer)


def _raw_elements(src: str, holes: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """``<code>...</code>`` written as inline HTML is code too: one hole from tag to tag."""
    merged: list[tuple[int, int, str]] = []
    i = 0
    while i < len(holes):
        start, end, kind = holes[i]
        opening = _RAW_OPEN.match(src, start) if kind == "html_tag" else None
        closing = re.compile(rf"</{opening.group(1)}\s*>", re.I) if opening else None
        j = next((k for k in range(i + 1, len(holes)) if closing
                  and closing.fullmatch(src, holes[k][0], holes[k][1])), None)
        if j is None:
            merged.append(holes[i])
            i += 1
        else:
            merged.append((start, holes[j][1], "inline_code"))
            i = j + 1
    return merged


def _record_holes(src: str, record: _Record) -> list[tuple[int, int, str]]:
    start, end, rule = record.start, record.end, record.rule
    if rule == "backticks":
        return [(start, end, "inline_code")] if any(
            t.type == "code_inline" for t in record.tokens) else []
    if rule in ("link", "image"):
        opener = 1 if rule == "link" else 2
        after = record.label_end + 1
        if record.label_end < 0 or not any(t.type in ("link_open", "image") for t in record.tokens):
            return []
        if after < len(src) and src[after] == "(":
            return [(start, start + opener, "markup"), (record.label_end, end, "url")]
        if after < len(src) and src[after] == "[" and not src.startswith("[]", after):
            return [(start, start + opener, "markup"), (record.label_end, end, "link_ref")]
        return [(start, end, "link_ref")]  # [label] and [label][]: the text is the reference
    if rule == "autolink":
        return [(start, end, "email" if "@" in src[start:end] and "://" not in src[start:end]
                 else "url")]
    if rule == "html_inline":
        kind = "html_comment" if src.startswith("<!--", start) else "html_tag"
        return [(start, end, kind)]
    if rule == "entity":
        return [(start, end, "entity")] if any(t.type != "text" or t.content != src[start:end]
                                               for t in record.tokens) else []
    if rule == "math_inline":
        return [(start, end, "math")]
    return _delimiter_holes(record)


def _delimiter_holes(record: _Record) -> list[tuple[int, int, str]]:
    """Emphasis / strikethrough markers that found their pair (unpaired ones are prose)."""
    holes: list[tuple[int, int, str]] = []
    position = record.end
    # The delimiter run's tokens are the last ones pushed (a pending-text token may precede).
    for token, length in reversed(list(zip(record.tokens, record.lengths, strict=True))):
        if position <= record.start:
            break
        position -= length
        if token.type != "text" or token.content == "":
            if holes and holes[-1][0] == position + length:
                holes[-1] = (position, holes[-1][1], "markup")
            else:
                holes.append((position, position + length, "markup"))
    return holes


@dataclass
class _Doc:
    """The source text, its lines, and what parsing has found so far."""

    text: str
    options: FormatOptions
    env: dict[str, object]
    lines: list[tuple[int, int, int]]  # per line: start, content end, end (after newline)
    starts: list[int] = field(default_factory=list)  # line start offsets, for line numbers
    regions: list[tuple[int, int, Segment]] = field(default_factory=list)
    protected: list[tuple[str, str]] = field(default_factory=list)

    def body(self, line: int) -> str:
        start, stop, _ = self.lines[line]
        return self.text[start:stop]

    def block(self, first: int, last: int) -> str:
        return self.text[self.lines[first][0]:self.lines[last - 1][1]]


def _split_lines(text: str) -> list[tuple[int, int, int]]:
    # The same line breaks markdown-it sees (it normalises \r\n and \r to \n).
    found = [(m.start(), m.start(1) + len(m.group(1)), m.end()) for m in _LINE.finditer(text)]
    return [line for line in found if line[2] > line[0]] or [(0, 0, 0)]


def _normalized(text: str) -> str:
    """The text as the parser reads it: newlines as \\n, TOML front matter as YAML's (its
    lines are read from ``text`` by ``_front_matter``)."""
    return "\n".join(front_matter.toml_as_yaml(re.sub(r"\r\n?", "\n", text).split("\n")))


def parse(text: str, options: FormatOptions) -> ParsedDocument:
    normalized = _normalized(text)
    env: dict[str, object] = {}
    tokens = _parser().parse(normalized, env)
    lines = _split_lines(text)
    doc = _Doc(text, options, env, lines, [start for start, _, _ in lines])
    for i, token in enumerate(tokens):
        _block(doc, tokens, i, token)
    doc.regions.sort(key=lambda r: r[0])
    pieces: list[str | Segment] = []
    cursor = 0
    for start, end, segment in doc.regions:
        pieces.append(text[cursor:start])
        pieces.append(segment)
        cursor = end
    pieces.append(text[cursor:])
    return from_pieces([p for p in pieces if p != ""], doc.protected)


def _block(doc: _Doc, tokens: list[Token], i: int, token: Token) -> None:
    if token.map is None:
        return
    first, last = token.map
    if token.type in ("fence", "code_block"):
        if token.type == "fence":
            _check_fence(doc, token)
        doc.protected.append(("code_block", doc.block(first, last)))
    elif token.type.startswith("math_block"):
        doc.protected.append(("math", doc.block(first, last)))
    elif token.type == "front_matter":
        _front_matter(doc, first, last)
    elif token.type == "html_block":
        _html_block(doc, token, first, last)
    elif token.type == "admonition_open":
        _titled_line(doc, first, _ADMONITION, "admonition")
    elif token.type == "tr_open":
        _table_row(doc, tokens, i, first)
    elif token.type == "inline" and i > 0:
        parent = tokens[i - 1].type
        if parent == "paragraph_open":
            _paragraph(doc, token, first, last, tokens[i - 2].type if i > 1 else "")
        elif parent == "heading_open":
            _heading(doc, token, first, tokens[i - 1].markup)


def _check_fence(doc: _Doc, token: Token) -> None:
    first, last = token.map or (0, 0)
    closing = doc.body(last - 1).strip() if last - 1 > first else ""
    marker = token.markup
    closed = bool(closing) and set(closing) == {marker[0]} and len(closing) >= len(marker)
    if not closed and last >= len(doc.lines):
        raise DocumentError(
            f"{where(doc.options.source, f'line {first + 1}')}: the code fence {marker} opened "
            "here is never closed, so the rest of the document would be read as code. Close "
            f"it with a line holding {marker} and try again."
        )


def _content_span(doc: _Doc, line: int, content: str, search_from: int = 0) -> tuple[int, int]:
    """Absolute range of ``content`` (one line of a block's content) in source ``line``."""
    body = doc.body(line)
    stripped = content.strip()
    found = body.rfind(stripped) if search_from == 0 else body.find(stripped, search_from)
    if not stripped or found < search_from:
        return (-1, -1)
    start = doc.lines[line][0]
    return start + found, start + found + len(stripped)


def _paragraph(doc: _Doc, token: Token, first: int, last: int, container: str) -> None:
    """A paragraph's lines as prose runs. ``container`` is the type of the token before it: a
    blockquote it opens may start with an alert marker, a list item with a task box."""
    contents = token.content.split("\n")
    if len(contents) != last - first:
        doc.protected.append(("unparsed", doc.block(first, last)))
        return
    run: list[tuple[int, int]] = []
    for line, content in zip(range(first, last), contents, strict=True):
        if line == first and container == "blockquote_open" and _ALERT.fullmatch(content.strip()):
            doc.protected.append(("alert", content.strip()))  # "> [!NOTE]" is GitHub's markup
            continue
        if _DIRECTIVE.match(content):
            _prose(doc, run, line_start=True)
            run = []
            _titled_line(doc, line, _DIRECTIVE, "directive")
            continue
        span = _content_span(doc, line, content)
        if span[0] < 0:  # not found as written (tabs expanded?): keep the line untranslated
            doc.protected.append(("unparsed", doc.body(line)))
            _prose(doc, run, line_start=True)
            run = []
            continue
        box = line == first and container == "list_item_open"
        task = _TASK.match(content.strip()) if box else None
        if task:  # "- [x] done": the box is no prose
            doc.protected.append(("task", task.group(0).strip()))
            span = (span[0] + task.end(), span[1])
            if span[0] == span[1]:
                continue
        run.append(span)
    _prose(doc, run, line_start=True)


def _heading(doc: _Doc, token: Token, first: int, markup: str) -> None:
    if markup.startswith("#"):
        marker = re.match(r"\s*#+\s*", doc.body(first))
        span = _content_span(doc, first, token.content, marker.end() if marker else 0)
        if span[0] >= 0:
            _prose(doc, [span])
        return
    contents = token.content.split("\n")  # setext: the underline follows the content lines
    spans = [_content_span(doc, first + k, c) for k, c in enumerate(contents)]
    if all(s[0] >= 0 for s in spans):
        _prose(doc, spans, line_start=True)


def _table_row(doc: _Doc, tokens: list[Token], i: int, line: int) -> None:
    """Each cell of a table row is a segment, found between the row's unescaped pipes."""
    cells: list[Token] = []
    for token in tokens[i + 1:]:
        if token.type == "tr_close":
            break
        if token.type == "inline":
            cells.append(token)
    body = doc.body(line)
    start = doc.lines[line][0]
    for (left, right), cell in zip(_cell_bounds(body), cells, strict=False):
        raw = body[left + 1:right]
        content = raw.strip()
        if not content:
            continue
        if content.replace("\\|", "|") != cell.content:
            doc.protected.append(("unparsed", content))
            continue
        at = start + left + 1 + (len(raw) - len(raw.lstrip()))
        _prose(doc, [(at, at + len(content))], cell=True)


def _cell_bounds(body: str) -> list[tuple[int, int]]:
    """``(left, right)`` around each cell of a table row's line: its unescaped pipes, and before
    the first cell the row's indentation and quote markers ("> | a | b |" in a blockquote)."""
    lead = len(body) - len(body.lstrip(" \t>"))
    pipes = [k for k in range(lead, len(body)) if body[k] == "|" and _unescaped(body, k)]
    bounds = list(zip([lead - 1, *pipes], [*pipes, len(body)], strict=True))
    if bounds and not body[lead: bounds[0][1]].strip():
        bounds = bounds[1:]  # a leading pipe opens the row
    if bounds and not body[bounds[-1][0] + 1:].strip():
        bounds = bounds[:-1]  # a trailing pipe closes it
    return bounds


def _unescaped(text: str, index: int) -> bool:
    backslashes = len(text[:index]) - len(text[:index].rstrip("\\"))
    return backslashes % 2 == 0


def _titled_line(doc: _Doc, line: int, pattern: re.Pattern[str], kind: str) -> None:
    body = doc.body(line)
    match = pattern.match(body)
    if not match or not _LETTER.search(match.group("title")):
        doc.protected.append((kind, body))
        return
    doc.protected.append((kind, match.group("head") + "…"))
    start = doc.lines[line][0]
    _prose(doc, [(start + match.start("title"), start + match.end("title"))])


def _front_matter(doc: _Doc, first: int, last: int) -> None:
    toml = doc.body(first).startswith("+")  # Hugo's +++ ... +++
    for line in range(first + 1, last - 1):
        found = front_matter.value(doc.body(line), toml, MD_PATTERNS)
        if found is None:
            doc.protected.append(("front_matter", doc.body(line)))
            continue
        kept, at, segment = found  # the key and any comment stay as they are
        doc.protected.append(("front_matter", kept))
        start = doc.lines[line][0] + at
        segment.where = f"line {line + 1}"
        doc.regions.append((start, start + len(segment.raw), segment))


def _html_block(doc: _Doc, token: Token, first: int, last: int) -> None:
    raw = doc.block(first, last)
    if re.sub(r"\r\n?", "\n", raw) != token.content.rstrip("\n"):
        doc.protected.append(("html_block", raw))  # inside a container: keep as it is
        return
    pieces, protected = html.fragment(raw)
    doc.protected.extend(protected)
    offset = doc.lines[first][0]
    for piece in pieces:
        if isinstance(piece, Segment):
            doc.regions.append((offset, offset + len(piece.raw), piece))
        offset += len(piece if isinstance(piece, str) else piece.raw)


def _prose(
    doc: _Doc, spans: list[tuple[int, int]], cell: bool = False, line_start: bool = False
) -> None:
    """One segment over consecutive lines' content ranges (absolute ``(start, end)``).

    In a table ``cell`` every pipe is written back escaped: without its backslash it would end
    the cell. A segment at a ``line_start`` (a paragraph) must not begin with what would read
    as a block marker."""
    if not spans:
        return
    text = doc.text
    src = "\n".join(text[s:e] for s, e in spans)
    offsets: list[int] = []  # source offset of each src character
    for k, (s, e) in enumerate(spans):
        offsets.extend(range(s, e))
        if k + 1 < len(spans):
            offsets.append(e)
    holes = [(s, e, kind, offsets[s], offsets[e - 1] + 1)
             for s, e, kind in _inline_holes(src, doc.env) if e > s]
    holes += _hard_breaks(text, spans)
    holes.sort()
    origin, stop = spans[0][0], spans[-1][1]
    segment = Segment(
        text=src.replace("\n", " "),
        raw=text[origin:stop],
        holes=tuple(
            Hole(s, e, kind, html.tag_parts(text[rs:re_]) if kind == "html_tag"
                 else (text[rs:re_],), rs - origin, re_ - origin)
            for s, e, kind, rs, re_ in holes
        ),
        patterns=MD_PATTERNS,
        where=f"line {bisect.bisect_right(doc.starts, origin)}",
    )
    if cell:
        segment.escape = _escape_pipes
    lines = _stretch_lines(segment)
    if line_start or max(lines) > 1:
        segment.finish = _finisher(doc, spans, lines, line_start)
    doc.regions.append((origin, stop, segment))


def _escape_pipes(prose: str) -> str:
    """A pipe ends a table cell unless an odd number of backslashes come before it."""
    return re.sub(r"(?<!\\)((?:\\\\)*)\|", r"\1\\|", prose)


def _hard_breaks(
    text: str, spans: list[tuple[int, int]]
) -> list[tuple[int, int, str, int, int]]:
    """Line breaks Markdown keeps (two trailing spaces, or a backslash) stay as holes, with
    their raw range: from the end of one line's content to the start of the next's."""
    found: list[tuple[int, int, str, int, int]] = []
    position = 0
    for (s, e), (next_start, _) in zip(spans, spans[1:], strict=False):
        position += e - s  # the index of the separator in the segment text
        between = text[e:next_start]
        trailing = between.split("\n", 1)[0].split("\r", 1)[0]
        content = text[s:e]
        backslash = (len(content) - len(content.rstrip("\\"))) % 2 == 1
        if backslash:
            found.append((position - 1, position + 1, "line_break", e - 1, next_start))
        elif trailing.startswith("  "):
            found.append((position, position + 1, "line_break", e, next_start))
        position += 1
    return found


def _stretch_lines(segment: Segment) -> list[int]:
    """How many source lines each stretch of a segment spans, stretches being cut by the holes
    that hold a line break (a hard break, inline code across lines): those keep their own."""
    counts: list[int] = []
    cursor = 0
    for hole in sorted(segment.holes, key=lambda h: h.raw_start):
        if _NEWLINE.search(segment.raw, hole.raw_start, hole.raw_end):
            counts.append(1 + len(_NEWLINE.findall(segment.raw, cursor, hole.raw_start)))
            cursor = hole.raw_end
    return [*counts, 1 + len(_NEWLINE.findall(segment.raw, cursor))]


def _finisher(
    doc: _Doc, spans: list[tuple[int, int]], lines: list[int], line_start: bool
) -> Callable[[Sequence[tuple[str, bool]]], str]:
    """Writes a translation back stretch by stretch (see ``_stretch_lines``): a soft-wrapped
    one re-flowed over as many lines as it had, each line start made safe (``_start_line``)."""
    first = bisect.bisect_right(doc.starts, spans[0][0]) - 1
    _, content_end, line_end = doc.lines[first]
    newline = doc.text[content_end:line_end] or "\n"
    prefix = ""  # what continuation lines start with: a quote marker, an indent
    if len(spans) > 1:
        second = bisect.bisect_right(doc.starts, spans[1][0]) - 1
        prefix = doc.text[doc.starts[second]:spans[1][0]]

    def finish(parts: Sequence[tuple[str, bool]]) -> str:
        out: list[str] = []
        starts_line = line_start
        for k, (stretch, separator) in enumerate(_stretches(parts)):
            if starts_line:
                stretch = _start_line(stretch)
            text = "".join(t for t, _ in stretch)
            count = lines[k] if k < len(lines) else 1
            if count > 1:  # re-flowed, keeping a space next to "`code\nacross lines`"
                lead, trail = (" " if edge.isspace() else "" for edge in (text[:1], text[-1:]))
                text = lead + rewrap(stretch, count, newline, prefix, _starts_block) + trail
            # a hard break ("  \n> ") ends a line and the next one starts after it
            starts_line = bool(_HARD_BREAK.fullmatch(separator))
            out += [text.rstrip() if starts_line else text, separator]
        return "".join(out)

    return finish


def _starts_block(word: str) -> bool:
    return bool(_STARTS_BLOCK.match(word))


def _stretches(parts: Sequence[tuple[str, bool]]) -> list[tuple[list[tuple[str, bool]], str]]:
    """``parts`` cut at each protected part that holds a line break: (stretch, that part)."""
    found: list[tuple[list[tuple[str, bool]], str]] = []
    stretch: list[tuple[str, bool]] = []
    for text, protected in parts:
        if protected and _NEWLINE.search(text):
            found.append((stretch, text))
            stretch = []
        else:
            stretch.append((text, protected))
    return [*found, (stretch, "")]


def _start_line(parts: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """Parts that begin a line, without leading space, and with a first word that Markdown
    would read as a block marker escaped: "1. Platz" would be a list, "1\\. Platz" is not."""
    parts = [part for part in parts if part[0]]
    if not parts or parts[0][1]:
        return parts  # it starts with a protected span: nothing of the translation's
    text = parts[0][0].lstrip()
    words = words_of([(text, False), *parts[1:]])
    digits = len(text) - len(text.lstrip("0123456789"))  # "1." is escaped as "1\\."
    if words and _starts_block(words[0]) and digits < len(text):
        text = text[:digits] + "\\" + text[digits:]
    return [(text, False), *parts[1:]]


def blocks(text: str) -> list[str]:
    """The blocks of a document, outer ones first ("blockquote", "p", "h2", "table row of 2
    cells" ...): a translation must keep them, as "1. Platz" at a paragraph's start would not."""
    normalized = _normalized(text)
    lines = normalized.split("\n")
    found: list[str] = []
    for token in _parser().parse(normalized, {}):
        if token.nesting < 0 or token.type == "inline":
            continue
        if token.type == "tr_open" and token.map:
            found.append(f"table row of {len(_cell_bounds(lines[token.map[0]]))} cells")
        elif token.type not in ("th_open", "td_open"):
            found.append(token.tag if token.type == "heading_open" else token.type.removesuffix("_open"))
    return found


FORMAT = Format(
    name="markdown",
    extensions=(".md", ".markdown", ".mdown", ".mkd"),
    parse=parse,
    description="Markdown (CommonMark + tables, front matter, math, admonitions)",
)
