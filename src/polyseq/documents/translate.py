"""Selective translation of whole documents.

``translate_document`` parses a document with its format (``polyseq.documents.formats``), masks
what must not be translated (``polyseq.documents.protect``), cuts the prose into sentences that fit
the model (``polyseq.documents.segment``), sends the sentences to any translator - a callable from
a list of strings to a list of strings, or a loaded ``Translator`` - and writes the document
back with every protected span exactly once. A sentence whose sentinels the model dropped,
doubled or garbled, or whose structure (emphasis markers, link brackets, inline tags) it
reordered or emptied, is repaired by translating its prose pieces around the spans one by one;
the summary counts those repairs. Spacing next to structure is made as in the source, since
``**fett **`` is no emphasis. ``translate_document_file`` does the same for a file and writes
the result atomically, never over its input. ``translate_texts`` does it for a list of texts, each
its own unit of prose (the lines of ``polyseq translate --glossary``). Plural branches and forms
written for a sample number (``protect.Sample``) get their placeholder back in the number's place,
or, where the number did not come back once, are written from their fallback.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyseq.documents.formats import format_for_path, get_format
from polyseq.documents.glossary import Glossary, as_glossary
from polyseq.documents.patterns import PROSE_PATTERNS
from polyseq.documents.plurals import Plurals, plurals_for, put_back
from polyseq.documents.protect import (
    DocumentError,
    FormatOptions,
    Segment,
    Span,
    has_words,
    hug_structure,
    is_structure,
    mask,
    nested_segments,
    restore_check,
    sentinel_ids,
    split_sentinels,
    strip_sentinel_debris,
    structure_kept,
    where,
)
from polyseq.documents.segment import split_sentences
from polyseq.files import InputError, check_output, read_text, write_atomic

Translate = Callable[[list[str]], list[str]]
_BOM = "\ufeff"


class TranslatorError(RuntimeError):
    """The translator broke its contract (one string back for each string in)."""


@dataclass
class DocumentSummary:
    """What a document translation did."""

    format: str
    segments: int = 0  # prose units found (paragraphs, cells, msgids, string values ...)
    sentences: int = 0  # pieces sent to the translator (after sentence splitting)
    unchanged: int = 0  # segments with nothing to translate (only code, numbers, spans)
    spans_protected: int = 0
    protected_by_kind: dict[str, int] = field(default_factory=dict)
    repairs: int = 0  # sentences whose sentinels came back wrong and were repaired
    repaired_by_kind: dict[str, int] = field(default_factory=dict)
    # plural branches and forms translated for a sample number, and those of them written from
    # their fallback (the placeholder kept) since the number did not come back exactly once
    plural_samples: int = 0
    plural_fallbacks: int = 0

    def __str__(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.protected_by_kind.items()))
        plurals = (f", {self.plural_samples} plural forms translated for a number "
                   f"({self.plural_fallbacks} fell back)" if self.plural_samples else "")
        return (
            f"{self.format}: {self.segments} segments, {self.sentences} sentences sent to the model, "
            f"{self.spans_protected} spans protected ({kinds or 'none'}), "
            f"{self.repairs} repairs{plurals}"
        )


@dataclass
class DocumentResult:
    text: str
    summary: DocumentSummary


@dataclass
class TextsResult:
    texts: list[str]  # one per text given, in order
    summary: DocumentSummary


def as_translate(translator: Any, src_lang: str | None, tgt_lang: str | None) -> Translate:
    """A plain ``list[str] -> list[str]`` function from a callable or a loaded Translator (its
    `for_segments`, with the Translator's default strategy)."""
    for_segments = getattr(translator, "for_segments", None)
    if callable(for_segments):
        if not tgt_lang:
            raise DocumentError(
                "a Translator needs the target language: pass tgt_lang (--tgt), and src_lang "
                "(--src) when the model knows more than one source language."
            )
        return for_segments(src_lang, tgt_lang)  # type: ignore[no-any-return]
    if callable(translator):
        return translator  # type: ignore[no-any-return]
    raise TypeError(
        f"translator must be a callable list[str] -> list[str] or a Translator, not "
        f"{type(translator).__name__}"
    )


def all_segments(segments: Sequence[Segment]) -> list[Segment]:
    """Segments and the segments nested in their holes (tag attributes), inner ones first."""
    found: list[Segment] = []
    for segment in segments:
        for hole in segment.holes:
            found.extend(all_segments([p for p in hole.parts if isinstance(p, Segment)]))
        found.append(segment)
    return found


@dataclass
class _Plan:
    """A segment cut into sentences: prose gaps as strings, sentences as masked strings."""

    segment: Segment
    spans: list[Span]
    pieces: list[tuple[str, bool]]  # (text, is_sentence)


class _Job:
    """Translates the sentences of many segments in a few batched calls, then renders them."""

    def __init__(self, translate: Translate, lang: str, max_chars: int, batch_size: int,
                 glossary: Glossary | None = None, plurals: Plurals | None = None):
        self.translate, self.lang, self.glossary, self.plurals = translate, lang, glossary, plurals
        self.max_chars, self.batch_size = max_chars, batch_size
        self.plans: dict[int, _Plan] = {}
        self.done: dict[str, list[str | int]] = {}  # masked sentence -> prose and sentinels
        self.structure: dict[str, set[int]] = {}  # masked sentence -> its structure sentinels
        self.repaired: set[str] = set()
        self.rendered: dict[int, str] = {}
        self.fell_back: set[Segment] = set()  # segments with a Sample written from its fallback

    def plan(self, segment: Segment) -> _Plan:
        """Cut ``segment`` into sentences (after the segments nested in its spans, inner first,
        and its fallback)."""
        masked = mask(segment, self.glossary, self.plurals)
        for nested in nested_segments(masked.spans):
            self.plan(nested)
        if segment.sample is not None:
            self.plan(segment.sample.fallback)
        pieces: list[tuple[str, bool]] = []
        cursor = 0
        if has_words(masked.text):
            for start, end in split_sentences(masked.text, self.lang, self.max_chars):
                sentence = masked.text[start:end]
                pieces.append((masked.text[cursor:start], False))
                pieces.append((sentence, has_words(sentence)))
                self.structure.setdefault(sentence, set()).update(
                    n for n in sentinel_ids(sentence) if is_structure(masked.spans[n - 1]))
                cursor = end
        pieces.append((masked.text[cursor:], False))
        plan = _Plan(segment, masked.spans, [p for p in pieces if p[0]])
        self.plans[id(segment)] = plan
        return plan

    def run(self) -> None:
        wanted = list(dict.fromkeys(t for p in self.plans.values() for t, s in p.pieces if s))
        translations = self._call(wanted)
        broken: list[str] = []
        for source, translation in zip(wanted, translations, strict=True):
            parts = restore_check(translation, source)
            original, ids = split_sentinels(source), self.structure[source]
            if parts is None or not structure_kept(original, parts, ids):
                broken.append(source)
            else:
                self.done[source] = hug_structure(original, parts, ids)
        self._repair(broken)

    def _repair(self, broken: list[str]) -> None:
        """Translate each prose piece between the sentinels on its own, keep spans in order.

        Only a piece's words go to the model: the spaces and punctuation at its edges stay
        as in the source. A model translates a fragment as a sentence and adds a full stop or
        drops a bracket, and next to a span that can undo the markup: "**Zeit.**Wort" is no
        emphasis in Markdown, "**Zeit**) Wort" is."""
        pieces = [p for s in broken for p in split_sentinels(s) if isinstance(p, str)]
        wanted = list(dict.fromkeys(_edges(p)[1] for p in pieces if has_words(p)))
        translated = dict(zip(wanted, self._call(wanted), strict=True))
        for source in broken:
            parts: list[str | int] = []
            for part in split_sentinels(source):
                lead, words, trail = _edges(part) if isinstance(part, str) else ("", "", "")
                if words in translated:
                    inner = _PUNCTUATION_EDGES.sub("", strip_sentinel_debris(translated[words]))
                    part = lead + (inner or words) + trail
                parts.append(part)
            self.done[source] = parts
            self.repaired.add(source)

    def _call(self, texts: list[str]) -> list[str]:
        out: list[str] = []
        for i in range(0, len(texts), self.batch_size):
            batch = texts[i:i + self.batch_size]
            result = self.translate(list(batch))
            if not isinstance(result, list | tuple) or len(result) != len(batch):
                got = len(result) if isinstance(result, list | tuple) else type(result).__name__
                raise TranslatorError(
                    f"the translator returned {got} results for {len(batch)} segments; it must "
                    "return one string for each string it is given, in order."
                )
            if not all(isinstance(r, str) for r in result):
                raise TranslatorError("the translator must return strings.")
            out.extend(r.strip() for r in result)
        return out

    def render(self, segment: Segment) -> str:
        key = id(segment)
        if key not in self.rendered:
            self.rendered[key] = self._render(self.plans[key])
        return self.rendered[key]

    def _span_out(self, segment: Segment, span: Span) -> str:
        if span.hole is None:
            return segment.escape(span.text if span.output is None else span.output)
        return "".join(p if isinstance(p, str) else self.render(p) for p in span.hole.parts)

    def _render(self, plan: _Plan) -> str:
        segment = plan.segment
        changed = (
            any(split_sentinels(text) != self.done[text] for text, is_sentence in plan.pieces if is_sentence)
            or any(self.render(nested) != nested.raw for nested in nested_segments(plan.spans))
            or any(span.output not in (None, span.text) for span in plan.spans)  # a glossary's term
            or any(span.hole is not None and span.hole.retargeted for span in plan.spans)
        )
        if not changed:  # (a span with segments nested by the mask has no raw place to write to)
            return self._unchanged(plan)  # (a Sample's raw is its source, placeholder and all)
        parts: list[tuple[str, bool]] = []  # prose (not escaped yet) or a span's output
        for text, is_sentence in plan.pieces:
            for part in self.done[text] if is_sentence else split_sentinels(text):
                if isinstance(part, int):
                    parts.append((self._span_out(segment, plan.spans[part - 1]), True))
                else:
                    parts.append((part, False))
        if segment.sample is not None:
            sample = segment.sample
            numbered = put_back(parts, sample.number, segment.escape(sample.placeholder))
            if numbered is None:
                self.fell_back.add(segment)
                return self.render(sample.fallback)
            parts = numbered
        return segment.finish([(text if span else segment.escape(text), span) for text, span in parts])

    def _unchanged(self, plan: _Plan) -> str:
        """The raw source, with any hole whose nested prose was translated written anew."""
        segment, out, cursor = plan.segment, [], 0
        for hole in sorted(segment.holes, key=lambda h: h.raw_start):
            if all(isinstance(p, str) for p in hole.parts):
                continue
            out.append(segment.raw[cursor:hole.raw_start])
            out.append("".join(p if isinstance(p, str) else self.render(p) for p in hole.parts))
            cursor = hole.raw_end
        out.append(segment.raw[cursor:])
        return "".join(out)


_EDGES = re.compile(r"(\W*)(.*?)(\W*)", re.DOTALL)  # non-word edges, words between
_PUNCTUATION = "".join(re.escape(chr(c)) for c in range(0x3100)  # Latin to CJK punctuation
                       if unicodedata.category(chr(c)).startswith("P"))
_PUNCTUATION_EDGES = re.compile(rf"^[\s{_PUNCTUATION}]+|[\s{_PUNCTUATION}]+$")


def _edges(piece: str) -> tuple[str, str, str]:
    """``") is fast, "`` -> ``(") ", "is fast", ", ")``."""
    match = _EDGES.fullmatch(piece)
    assert match is not None  # every string matches
    return match.group(1), match.group(2), match.group(3)


def translate_document(
    text: str,
    format: str,
    translator: Any,
    *,
    src_lang: str | None = None,
    tgt_lang: str | None = None,
    source: str | None = None,
    overwrite: bool = False,
    fuzzy: bool = True,
    json_paths: Sequence[str] = (),
    max_chars: int = 400,
    batch_size: int = 64,
    glossary: Glossary | Mapping[str, str] | str | Path | None = None,
) -> DocumentResult:
    """Translate the prose of ``text`` and keep everything else byte for byte.

    ``translator`` maps a list of segment strings to a list of strings (any callable), or is a
    loaded Translator (then ``src_lang`` and ``tgt_lang`` are required). ``source`` names the
    document in error messages. ``overwrite`` and ``fuzzy`` are for .po catalogs,
    ``json_paths`` (``"items.*.title"``) limits JSON to those string values, ``max_chars``
    is the longest piece sent to the translator. ``glossary`` (a Glossary, a mapping of terms or
    a glossary file) fixes the translation of its terms (``polyseq.documents.glossary``).
    """
    fmt = get_format(format)
    translate = as_translate(translator, src_lang, tgt_lang)
    nul = text.find("\x00")
    if nul >= 0:
        raise DocumentError(
            f"{where(source, f'character {nul}')}: this looks like binary data (a NUL "
            "character); polyseq translates text documents."
        )
    options = FormatOptions(source=source, src_lang=src_lang, tgt_lang=tgt_lang, overwrite=overwrite,
                            fuzzy=fuzzy, json_paths=tuple(json_paths))
    bom = _BOM if text.startswith(_BOM) else ""
    parsed = fmt.parse(text[len(bom):], options)
    job = _Job(translate, src_lang or "en", max_chars, batch_size, as_glossary(glossary),
               plurals_for(src_lang, tgt_lang))
    for segment in all_segments(parsed.segments):
        job.plan(segment)
    plans = list(job.plans.values())
    job.run()
    outputs = [job.render(segment) for segment in parsed.segments]
    summary = _summary(fmt.name, parsed.protected, plans, job)
    return DocumentResult(bom + parsed.build(outputs, frozenset(job.fell_back)), summary)


def translate_texts(
    texts: Sequence[str],
    translator: Any,
    *,
    src_lang: str | None = None,
    tgt_lang: str | None = None,
    max_chars: int = 400,
    batch_size: int = 64,
    glossary: Glossary | Mapping[str, str] | str | Path | None = None,
) -> TextsResult:
    """Translate each text as one unit of prose, as ``translate_document`` translates a paragraph
    of plain text: placeholders, URLs, code and glossary terms protected, long texts cut into
    sentences, sentences whose sentinels the model broke repaired. Unlike the ``plain`` format,
    which joins a hard-wrapped line with the next, no text is joined with another, so there is
    one translation per text, in order. A text's leading and trailing whitespace is kept, a blank
    text stays as it is. Arguments as for ``translate_document``.
    """
    translate = as_translate(translator, src_lang, tgt_lang)
    job = _Job(translate, src_lang or "en", max_chars, batch_size, as_glossary(glossary),
               plurals_for(src_lang, tgt_lang))
    units: list[tuple[str, Segment | None, str]] = []  # (leading space, segment, trailing space)
    for number, text in enumerate(texts, start=1):
        if not isinstance(text, str):
            raise TypeError(f"text {number} is a {type(text).__name__}, not a string")
        body = text.strip()
        lead, trail = text[:len(text) - len(text.lstrip())], text[len(text.rstrip()):]
        if not body:  # nothing to translate: no segment, so no call to the model either
            units.append((text, None, ""))
            continue
        segment = Segment(body, raw=body, patterns=PROSE_PATTERNS)
        job.plan(segment)
        units.append((lead, segment, trail))
    plans = list(job.plans.values())
    job.run()
    outputs = [lead + (job.render(segment) if segment else "") + trail for lead, segment, trail in units]
    return TextsResult(outputs, _summary("texts", [], plans, job))


def _summary(
    name: str, protected: list[tuple[str, str]], plans: list[_Plan], job: _Job
) -> DocumentSummary:
    kinds = Counter(kind for kind, _ in protected)
    repaired: Counter[str] = Counter()
    sentences = 0
    for plan in plans:
        kinds.update(span.kind for span in plan.spans)
        for text, is_sentence in plan.pieces:
            if not is_sentence:
                continue
            sentences += 1
            if text in job.repaired:
                repaired.update(plan.spans[i - 1].kind for i in split_sentinels(text)
                                if isinstance(i, int))
    return DocumentSummary(
        format=name,
        segments=len(plans),
        sentences=sentences,
        unchanged=sum(1 for p in plans if not any(s for _, s in p.pieces)),
        spans_protected=sum(kinds.values()),
        protected_by_kind=dict(sorted(kinds.items())),
        repairs=sum(1 for p in plans for t, s in p.pieces if s and t in job.repaired),
        repaired_by_kind=dict(sorted(repaired.items())),
        plural_samples=sum(1 for p in plans if p.segment.sample is not None),
        plural_fallbacks=len(job.fell_back),
    )


def read_document(path: str | Path) -> str:
    """A document's text (`polyseq.files.read_text`); a binary or non-UTF-8 file is a DocumentError
    naming the position."""
    try:
        return read_text(path)
    except InputError as error:
        raise DocumentError(str(error)) from None


def default_output(path: str | Path, tgt_lang: str | None) -> Path:
    """``README.md`` -> ``README.de.md``: where a translation goes when no output is named."""
    path = Path(path)
    if not tgt_lang:
        raise DocumentError(f"{path}: name an output file (-o) or a target language (--tgt).")
    return path.with_name(f"{path.stem}.{tgt_lang}{path.suffix}")


def translate_document_file(
    path: str | Path,
    output: str | Path | None = None,
    *,
    translator: Any,
    format: str | None = None,
    src_lang: str | None = None,
    tgt_lang: str | None = None,
    **settings: Any,
) -> DocumentResult:
    """Translate the file at ``path`` into ``output`` (default ``NAME.<tgt>.EXT``).

    The format comes from ``format`` or the file extension; ``settings`` are those of
    ``translate_document``. The output is written atomically; the input is never written.
    """
    path = Path(path)
    fmt = get_format(format) if format else format_for_path(path)
    target = Path(output) if output is not None else default_output(path, tgt_lang)
    if target.exists() and target.resolve() == path.resolve():
        raise DocumentError(
            f"{path}: the output is the input file; polyseq never writes over its input. "
            "Name another output file (-o)."
        )
    check_output(target)  # a folder, or a folder that does not exist, before the work
    result = translate_document(
        read_document(path), fmt.name, translator, src_lang=src_lang, tgt_lang=tgt_lang,
        source=str(path), **settings,
    )
    write_atomic(target, result.text)
    return result
