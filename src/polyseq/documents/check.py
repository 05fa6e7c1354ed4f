"""Whether a translation kept its source's protected spans (code, URLs, placeholders, tags, keys):
each must appear unchanged, as often as in the source. The category branches of an ICU plural
are the target language's, so each must hold the spans of one of the source's category branches
(and no more is asked of them)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from polyseq.documents.formats import format_for_path, get_format
from polyseq.documents.protect import BRANCH_KIND, FormatOptions, ParsedDocument, Segment, masked_spans
from polyseq.documents.translate import all_segments, read_document

_BOM = "\ufeff"


@dataclass
class PreservationReport:
    """How many protected spans of each kind a translation kept, and where it did not."""

    counts: dict[str, tuple[int, int, int]]  # kind -> (in source, in translation, kept)
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def rate(self, kind: str | None = None) -> float:
        """Share of the source's protected spans (of one kind, or all) found unchanged."""
        chosen = [self.counts[kind]] if kind else list(self.counts.values())
        total = sum(c[0] for c in chosen)
        return 1.0 if total == 0 else sum(c[2] for c in chosen) / total

    def __str__(self) -> str:
        lines = [f"{k}: {s} in source, {t} in translation, {kept} kept"
                 for k, (s, t, kept) in sorted(self.counts.items())]
        lines += self.problems[:20] + ([f"... {len(self.problems) - 20} more"]
                                       if len(self.problems) > 20 else [])
        return "\n".join(["preserved" if self.ok else "NOT preserved", *lines])


def _span_inventory(parsed: ParsedDocument) -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter(parsed.protected)
    for segment in all_segments(parsed.segments):
        found.update((span.kind, span.key()) for span in masked_spans(segment))
    return found


def protected_spans(
    text: str, format: str, *, source: str | None = None, json_paths: Sequence[str] = ()
) -> Counter[tuple[str, str]]:
    """Every protected span of a document as ``(kind, text)`` with its count."""
    options = FormatOptions(source=source, json_paths=tuple(json_paths))
    return _span_inventory(get_format(format).parse(text.removeprefix(_BOM), options))


def _po_inventories(
    source: str, translation: str, name: str | None
) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """Catalog structure (msgids, comments, flags) plus, entry by entry, the spans of each
    msgid against those of its msgstr forms."""
    from polyseq.documents.formats import po

    translated_catalog = po.load(translation, name)
    expected = Counter(po.structure(po.load(source, name)))
    found = Counter(po.structure(translated_catalog))
    for place, original, translated in po.translated_pairs(translated_catalog):
        for counter, text in ((expected, original), (found, translated)):
            spans = masked_spans(Segment(text=text, raw=text))
            counter.update((s.kind, f"{place}: {s.key()}") for s in spans)
    return expected, found


def check_preservation(
    source: str,
    translation: str,
    format: str,
    *,
    source_name: str | None = None,
    json_paths: Sequence[str] = (),
) -> PreservationReport:
    """Compare the protected spans (code, URLs, placeholders, tags, keys ...) of a translation
    with its source's: each must appear unchanged, as often as in the source."""
    fmt = get_format(format)
    if fmt.name == "po":
        expected, found = _po_inventories(source, translation, source_name)
    else:
        expected = protected_spans(source, fmt.name, source=source_name, json_paths=json_paths)
        found = protected_spans(translation, fmt.name, source=source_name, json_paths=json_paths)
    counts: dict[str, list[int]] = {}
    problems: list[str] = []
    for kind, key in sorted(set(expected) | set(found)):
        have, got = expected[(kind, key)], found[(kind, key)]
        if kind == BRANCH_KIND:  # a plural branch like none of the source's
            if got and not have:
                problems.append(f"plural {key}: no branch of the source has these spans")
            continue
        entry = counts.setdefault(kind, [0, 0, 0])
        entry[0] += have
        entry[1] += got
        entry[2] += min(have, got)
        if have != got:
            problems.append(f"{kind} {key!r}: {have} in source, {got} in translation")
    if fmt.name == "markdown":
        problems += _block_problems(source, translation)
    return PreservationReport({k: (v[0], v[1], v[2]) for k, v in counts.items()}, problems)


def _block_problems(source: str, translation: str) -> list[str]:
    """Markdown blocks are no spans, but a translation must keep them too: prose that starts
    with "1. " becomes a list, a pipe in a cell splits the cell."""
    from polyseq.documents.formats import markdown

    before = Counter(markdown.blocks(source.removeprefix(_BOM)))
    after = Counter(markdown.blocks(translation.removeprefix(_BOM)))
    return [f"block {name!r}: {before[name]} in source, {after[name]} in translation"
            for name in sorted(set(before) | set(after)) if before[name] != after[name]]


def check_file(
    source: str | Path, translation: str | Path, format: str | None = None
) -> PreservationReport:
    """``check_preservation`` for two files; the format comes from the source's extension."""
    fmt = get_format(format) if format else format_for_path(source)
    return check_preservation(read_document(source), read_document(translation), fmt.name,
                              source_name=str(source))
