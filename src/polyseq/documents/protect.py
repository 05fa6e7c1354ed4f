"""Selective translation: the span model every format shares, and inline protection.

A format (``polyseq.documents.formats``) turns a file into a ``ParsedDocument``: translatable
``Segment``s, with everything between them (code blocks, markup, JSON keys, .po comments)
kept aside byte for byte. Inside a segment, some text must still not be translated:
placeholders (``%(name)s``, ``{0}``, ``{{ var }}``), inline code, URLs, e-mail addresses and
inline tags. The format marks what its parser knows as ``Hole``s; the inline patterns
(``polyseq.documents.patterns``) find the rest, and a glossary's terms
(``polyseq.documents.glossary``) are spans too, written back as their translations. ``mask``
replaces each such span by a sentinel ``⟦n⟧`` that the model copies, and ``restore`` puts the
spans back, refusing (returning ``None``) unless every sentinel came back exactly once, so that
the caller can repair the segment instead of losing or doubling a span. Given the languages
(``Plurals``), the mask gives an ICU plural message the target language's categories, each
branch a segment with a sample number in place of its ``#`` (a ``Sample``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from polyseq.documents.glossary import Glossary
from polyseq.documents.icu import (
    HASH_KIND,
    QUOTED_KIND,
    Branch,
    join_branch,
    split_message,
    unquoted_hashes,
)
from polyseq.documents.patterns import ALL_PATTERNS, ICU_KIND, find_spans
from polyseq.documents.plurals import Plurals, count_number, number_placeholder
from polyseq.files import InputError

# Not a span: the spans of a plural's category branch, which a translation may have once, many
# times or not at all, since its categories are the target language's (see masked_spans).
BRANCH_KIND = "icu_branch"
GLOSSARY_KIND = "glossary"
SENTINEL_OPEN = "⟦"
SENTINEL_CLOSE = "⟧"
# Tolerant on purpose: a model that writes "⟦ 3 ⟧" still copied the sentinel.
SENTINEL_RE = re.compile(r"⟦\s*(\d+)\s*⟧")
_LETTER = re.compile(r"[^\W\d_]")



class DocumentError(InputError):
    """Input a document translation cannot use; the message names the file, the place, the fix."""


def where(source: str | None, place: str) -> str:
    """``"README.md, line 3"``: the prefix of every DocumentError message."""
    return f"{source}, {place}" if source else place


@dataclass(frozen=True)
class FormatOptions:
    """What a format needs beyond the text; each format reads the fields it uses."""

    source: str | None = None  # the file name, for messages
    src_lang: str | None = None
    tgt_lang: str | None = None
    overwrite: bool = False  # .po: translate entries that already have a msgstr
    fuzzy: bool = True  # .po: flag machine-translated entries "fuzzy" for review
    json_paths: tuple[str, ...] = ()  # JSON: translate only strings at these paths (glob-like)


@dataclass(frozen=True)
class Format:
    """A document format: its name, the file extensions it claims and its parser."""

    name: str
    extensions: tuple[str, ...]
    parse: Callable[[str, FormatOptions], ParsedDocument]
    description: str


@dataclass(eq=False)
class Hole:
    """A range of a segment's text that the format's parser knows is not prose (a tag, a link
    target). It is written back from ``parts``: raw text, and nested segments for the
    translatable attributes a tag may carry (``<abbr title="...">``)."""

    start: int  # range in the segment's text
    end: int
    kind: str
    parts: tuple[str | Segment, ...]
    raw_start: int  # range in the segment's raw source text
    raw_end: int
    name: str | None = None  # what must come back unchanged, where not the parts (an ICU message)
    # whether the parts are new, not the source's: an ICU plural with the target's categories
    retargeted: bool = False

    def key(self) -> str:
        """The hole with nested prose blanked out: what must come back unchanged."""
        if self.name is not None:
            return self.name
        return "".join(p if isinstance(p, str) else "…" for p in self.parts)


def _same(text: str) -> str:
    return text


def _join(parts: Sequence[tuple[str, bool]]) -> str:
    return "".join(text for text, _ in parts)


@dataclass(frozen=True)
class Sample:
    """A segment's text holds ``number`` where its source has ``placeholder`` (a plural's ``#``,
    a catalog's ``%d``), so that the model inflects the words for a number of the plural form
    it is translated for. Its translation gets the placeholder back in the number's place; where
    the number does not come back exactly once, ``fallback`` (the source text, placeholder and
    all) is what is written instead."""

    number: str
    placeholder: str
    fallback: Segment


@dataclass(eq=False)
class Segment:
    """One unit of prose (a paragraph, a cell, a msgid, a JSON string value).

    ``text`` is what the model reads, ``raw`` the exact source it came from (written back when
    nothing changed). A translation is written back as parts: prose escaped with ``escape``,
    protected spans as they were; ``finish`` joins the parts (quotes a JSON string, re-wraps
    a hard-wrapped paragraph).
    """

    text: str
    raw: str
    holes: tuple[Hole, ...] = ()
    patterns: frozenset[str] = ALL_PATTERNS
    escape: Callable[[str], str] = _same
    finish: Callable[[Sequence[tuple[str, bool]]], str] = _join
    where: str = ""
    sample: Sample | None = None
    # the plural group this text is a form of (i18next's "file_one", "file_other" in JSON):
    # a translation's forms are the target language's, so its spans are compared as a branch's
    form_of: str | None = None


# The spans a number placeholder can be (see with_number).
_NUMBER_KINDS = frozenset({"placeholder", "printf_glued", "laravel", "qt_arg", "dollar_variable"})


def with_number(segment: Segment, number: str, fallback: Segment | None = None,
                brace_format: bool = False) -> Segment | None:
    """``segment`` with ``number`` in place of its number placeholder
    (``plurals.number_placeholder``), to be written back from ``fallback`` (default: the segment
    itself) where the number does not come back once; None where it has no such placeholder,
    or the number is in its text already."""
    text = segment.text
    spans = [(s, e) for s, e, kind in find_spans(text, segment.patterns) if kind in _NUMBER_KINDS]
    # a "%" before a brace makes Ruby's %{name}, none of the forms the rule knows
    placeholders = [("%" if text[s - 1:s] == "%" else "") + text[s:e] for s, e in spans]
    found = number_placeholder(placeholders, brace_format)
    prose = text
    for s, e in reversed(spans):
        prose = prose[:s] + " " + prose[e:]
    if found is None or count_number(prose, number):
        return None
    start, end = spans[found]
    return replace(segment, text=text[:start] + number + text[end:],
                   sample=Sample(number, text[start:end], fallback or segment))


@dataclass
class ParsedDocument:
    """A file as segments plus a way back: ``build(outputs, fell_back)`` with one string per
    segment, and the segments with a Sample that were written from its fallback."""

    segments: list[Segment]
    protected: list[tuple[str, str]]  # (kind, text) kept outside segments: code blocks, keys ...
    build: Callable[[Sequence[str], frozenset[Segment]], str]


def from_pieces(
    pieces: Sequence[str | Segment], protected: list[tuple[str, str]]
) -> ParsedDocument:
    """A document that is a sequence of raw text and segments (all formats but .po)."""
    segments = [p for p in pieces if isinstance(p, Segment)]

    def build(outputs: Sequence[str], fell_back: frozenset[Segment]) -> str:
        it = iter(outputs)
        return "".join(p if isinstance(p, str) else next(it) for p in pieces)

    return ParsedDocument(segments, protected, build)


@dataclass(frozen=True)
class Span:
    """A protected span inside a segment: a hole, or a pattern or glossary match (``hole`` is
    None). ``output``, when set, is written in its place: a glossary term's translation."""

    kind: str
    text: str
    hole: Hole | None = None
    output: str | None = None

    def key(self) -> str:
        return self.hole.key() if self.hole else self.text


@dataclass
class Masked:
    """A segment's text with sentinel ``n`` standing for ``spans[n - 1]``."""

    text: str
    spans: list[Span] = field(default_factory=list)


def sentinel(number: int) -> str:
    return f"{SENTINEL_OPEN}{number}{SENTINEL_CLOSE}"


def mask(segment: Segment, glossary: Glossary | None = None, plurals: Plurals | None = None) -> Masked:
    """Replace holes, pattern matches and glossary terms in ``segment.text`` by sentinels ⟦1⟧,
    ⟦2⟧, ... (a term inside a hole or a pattern match, a URL say, is not one). With ``plurals``,
    an ICU plural message's branches are the target language's."""
    ranges: list[tuple[int, int, Span]] = []
    cursor = 0
    for hole in sorted(segment.holes, key=lambda h: h.start):
        ranges.extend(_pattern_ranges(segment, cursor, hole.start, glossary, plurals))
        ranges.append((hole.start, hole.end, Span(hole.kind, segment.text[hole.start:hole.end], hole)))
        cursor = hole.end
    ranges.extend(_pattern_ranges(segment, cursor, len(segment.text), glossary, plurals))
    out: list[str] = []
    spans: list[Span] = []
    cursor = 0
    for start, end, span in ranges:
        out.append(segment.text[cursor:start])
        spans.append(span)
        out.append(sentinel(len(spans)))
        cursor = end
    out.append(segment.text[cursor:])
    return Masked("".join(out), spans)


def _pattern_ranges(segment: Segment, start: int, end: int, glossary: Glossary | None,
                    plurals: Plurals | None) -> list[tuple[int, int, Span]]:
    """The pattern matches between ``start`` and ``end``, and the glossary's terms between them."""
    if start >= end:
        return []
    text = segment.text[start:end]
    found: list[tuple[int, int, Span]] = []
    cursor = 0
    for s, e, kind in [*find_spans(text, segment.patterns), (len(text), len(text), "")]:
        found += _term_ranges(glossary, segment.text, start + cursor, start + s)
        if kind:
            hole = _icu_hole(segment, start + s, start + e, plurals) if kind == ICU_KIND else None
            found.append((start + s, start + e, Span(kind, text[s:e], hole)))
        cursor = e
    return found


def _term_ranges(glossary: Glossary | None, text: str, start: int, end: int) -> list[tuple[int, int, Span]]:
    """The glossary's terms in ``text[start:end]``, each a span written back as its translation."""
    if glossary is None:
        return []
    return [(start + s, start + e, Span(GLOSSARY_KIND, text[start + s:start + e], output=target))
            for s, e, target in glossary.matches(text[start:end])]


def _icu_hole(segment: Segment, start: int, end: int, plurals: Plurals | None) -> Hole | None:
    """An ICU plural or select message as a hole whose branches are segments of their own (with
    the "#" of a plural protected); None, so protected whole, when it is malformed. With
    ``plurals``, a plural gets the target language's categories (``Plurals.branches``): each
    translated for its sample number where the branch it comes from has one "#" to write it in,
    else (and where the number does not come back) from its fallback branch."""
    message = split_message(segment.text[start:end])
    if message is None:
        return None
    key = message.key()
    patterns = segment.patterns | {QUOTED_KIND} | ({HASH_KIND} if message.kind != "select" else set())
    texts = {b.selector: b.text for b in message.branches}
    chosen = plurals.branches(message.kind, list(texts)) if plurals else None
    sampled: dict[str, tuple[str, tuple[int, int], str]] = {}  # category: (number, "#" place, fallback)
    for b in chosen or ():
        if b.sample is not None and (place := _hash_at(texts[b.source], patterns, b.sample)):
            sampled[b.category] = (b.sample, place, b.fallback)
    if chosen is not None:
        message = message.with_categories(
            [(b.category, b.source if b.category in sampled else b.fallback) for b in chosen])
    plain: dict[str, Segment] = {}  # by text: the branches that take one source branch share it

    def kept(text: str) -> Segment:
        return plain.setdefault(text, Segment(text, segment.escape(text), patterns=patterns,
                                              escape=segment.escape, finish=join_branch,
                                              where=segment.where))

    def branch_segment(branch: Branch) -> Segment:
        found = sampled.get(branch.selector)  # never an =N branch: categories are words
        if found is None:
            return kept(branch.text)  # no number to write, or no one place to write it
        number, (s, e), fallback = found
        return replace(kept(branch.text), text=branch.text[:s] + number + branch.text[e:],
                       sample=Sample(number, "#", kept(texts[fallback])))

    syntax = [segment.escape(text) for text in message.syntax()]
    parts = [p for text, branch in zip(syntax, message.branches, strict=False)
             for p in (text, branch_segment(branch))]
    # found by the mask, not the format: it has no place in the raw text (see translate._render)
    return Hole(start, end, ICU_KIND, (*parts, syntax[-1]), raw_start=-1, raw_end=-1, name=key,
                retargeted=chosen is not None)


def _hash_at(text: str, patterns: frozenset[str], number: str) -> tuple[int, int] | None:
    """Where a plural branch's one "#" is, for ``number`` to be written there; None where it has
    none of its own (it may be in a nested message; a quoted ``'#'`` is text), more than one, or
    the number already."""
    real = unquoted_hashes(text)
    hashes = [(s, e) for s, e, kind in find_spans(text, patterns) if kind == HASH_KIND and s in real]
    if len(hashes) != 1 or len(real) != 1 or count_number(text, number):
        return None
    return hashes[0]


def nested_segments(spans: Iterable[Span]) -> list[Segment]:
    """The segments inside the spans the mask found (an ICU message's branches); the segments
    in a format's holes are the format's own (see translate.all_segments)."""
    return [part for span in spans if span.kind == ICU_KIND and span.hole is not None
            for part in span.hole.parts if isinstance(part, Segment)]


def masked_spans(segment: Segment) -> list[Span]:
    """Every span protected in ``segment`` and in the segments nested in those spans. A plural's
    category branches follow the target language (Ukrainian has four where English has two,
    each like one of the source's): their spans come as one ``BRANCH_KIND`` item for each
    distinct set of them, which a translation may have or not, but must not add to. So do
    those of a segment that is a form of a plural group of keys (``form_of``)."""
    spans = mask(segment).spans
    found = spans + [span for s in spans for span in _nested_spans(s)]
    if segment.form_of is None:
        return found
    keys = sorted(f"{s.kind} {s.key()!r}" for s in found if s.kind != BRANCH_KIND)
    return [*(s for s in found if s.kind == BRANCH_KIND),
            Span(BRANCH_KIND, f"{segment.form_of} form with [{', '.join(keys)}]")]


def _nested_spans(span: Span) -> list[Span]:
    """The spans in the branches of an ICU message (see masked_spans)."""
    message = split_message(span.text) if span.kind == ICU_KIND else None
    if message is None or span.hole is None:
        return []
    found: list[Span] = []
    shapes: set[str] = set()
    nested = [p for p in span.hole.parts if isinstance(p, Segment)]
    for branch, segment in zip(message.branches, nested, strict=True):
        inner = masked_spans(segment)
        if message.kind == "select" or branch.explicit:
            found += inner
            continue
        found += [s for s in inner if s.kind == BRANCH_KIND]  # those of messages nested in it
        keys = sorted(f"{s.kind} {s.key()!r}" for s in inner if s.kind != BRANCH_KIND)
        shapes.add(f"{span.key()} branch with [{', '.join(keys)}]")
    return found + [Span(BRANCH_KIND, shape) for shape in sorted(shapes)]


def has_words(masked_text: str) -> bool:
    """Whether there is anything to translate: a letter outside the sentinels."""
    return bool(_LETTER.search(masked_text))


def sentinel_ids(text: str) -> list[int]:
    return [int(m.group(1)) for m in SENTINEL_RE.finditer(text)]


def split_sentinels(text: str) -> list[str | int]:
    """``"a ⟦1⟧ b"`` -> ``["a ", 1, " b"]``: prose and sentinel numbers, in order."""
    parts: list[str | int] = []
    cursor = 0
    for m in SENTINEL_RE.finditer(text):
        parts.append(text[cursor:m.start()])
        parts.append(int(m.group(1)))
        cursor = m.end()
    parts.append(text[cursor:])
    return [p for p in parts if p != ""]


def restore_check(translation: str, source: str) -> list[str | int] | None:
    """The translation as prose and sentinel numbers, or None when a sentinel of ``source``
    is missing, doubled or garbled, or one appears that ``source`` does not have."""
    if sorted(sentinel_ids(translation)) != sorted(sentinel_ids(source)):
        return None
    rest = SENTINEL_RE.sub("", translation)
    if SENTINEL_OPEN in rest or SENTINEL_CLOSE in rest:
        return None  # a broken sentinel like "⟦3" would leak into the output
    return split_sentinels(translation)


def strip_sentinel_debris(text: str) -> str:
    """Remove sentinels and stray sentinel brackets a model invented in a repaired piece."""
    return SENTINEL_RE.sub("", text).replace(SENTINEL_OPEN, "").replace(SENTINEL_CLOSE, "")


# Holes whose order and adjacency carry structure: emphasis markers and link brackets pair up,
# inline tags open and close. A model may move a placeholder; it must not move these.
STRUCTURE_KINDS = frozenset({"markup", "url", "link_ref", "html_tag"})


def is_structure(span: Span) -> bool:
    return span.hole is not None and span.kind in STRUCTURE_KINDS


def structure_kept(source: list[str | int], translation: list[str | int], ids: set[int]) -> bool:
    """Whether the structure sentinels ``ids`` come back in the source's order, and two that
    had text between them still do (``**⟦1⟧⟦2⟧**`` would be empty emphasis)."""
    order = [p for p in source if isinstance(p, int) and p in ids]
    if [p for p in translation if isinstance(p, int) and p in ids] != order:
        return False
    pairs = zip(order, order[1:], strict=False)
    return all(_gap(translation, a, b) or not _gap(source, a, b) for a, b in pairs)


def _gap(parts: list[str | int], a: int, b: int) -> bool:
    """Whether non-space text lies between sentinels ``a`` and ``b`` (a before b)."""
    inner = parts[parts.index(a) + 1 : parts.index(b)]
    return any(isinstance(p, int) or p.strip() for p in inner)


def hug_structure(source: list[str | int], translation: list[str | int],
                  ids: set[int]) -> list[str | int]:
    """The translation with the spacing on each side of a structure sentinel made as in the
    source: ``**fett **`` is no emphasis in Markdown, ``**fett**`` is."""
    out = list(translation)
    for n in ids:
        i, k = source.index(n), out.index(n)
        for step in (-1, 1):
            if not (0 <= i + step < len(source) and 0 <= k + step < len(out)):
                continue  # at an edge of the sentence: nothing to match
            had, got = source[i + step], out[k + step]
            if not isinstance(got, str):
                continue
            if not isinstance(had, str):  # two spans that touch: "</dfn>**" must stay so
                out[k + step] = got if got.strip() else ""
            elif got.strip():
                out[k + step] = _touching_space(got, step, _touching_space(had, step) != had)
    return out


def _touching_space(text: str, step: int, spaced: bool = False) -> str:
    """``text`` with the whitespace on the side that touches the sentinel removed (``step``
    -1: text before it, so its end; 1: text after it, so its start), and one space put back
    when ``spaced`` and the text had none there."""
    body = text.rstrip() if step == -1 else text.lstrip()
    if not spaced:
        return body
    if body != text:
        return text
    return body + " " if step == -1 else " " + body
