"""Inline patterns: the placeholders, code, URLs, e-mail addresses, inline tags and ICU
messages found inside a segment's prose (``find_spans``), by kind. A format chooses the kinds
its segments use (``ALL_PATTERNS``, ``PROSE_PATTERNS``, or its own set); ``protect.mask`` turns
each match into a span."""

from __future__ import annotations

import functools
import re

from polyseq.documents.icu import (
    ARGUMENT_HEAD,
    HASH_KIND,
    HASH_PATTERN,
    QUOTED_KIND,
    QUOTED_PATTERN,
    argument_end,
    quoted_text,
)

ICU_KIND = "icu_message"
_URL_CHAR = r"[^\s<>\"'`()\[\]⟦⟧]"
# What the patterns of ICU messages (plural, select, choice) match is the message's opening:
# find_spans scans on to its closing brace (icu.argument_end), since a regex cannot tell the
# braces that apostrophes quote ('{') from the message's own.
_MESSAGE_HEAD = re.compile(ARGUMENT_HEAD)


# printf conversion after the "%": "%" (the "%%" of a literal percent sign), or flags, width,
# precision, C length modifiers and a conversion (Python adds r and a, Objective-C @). No space
# flag, so "50% of" stays prose, and no "%" after a width, so "50%-60%" does. POSIX's "'" flag
# (thousands grouping: %'d, %'.2f) only before the conversions it groups: "1%'s" stays prose.
_PRINTF_REST = r"(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|L|q|j|z|t)?"
_PRINTF_SPEC = (rf"(?:%|[#0+\-]*{_PRINTF_REST}[diouxXeEfFgGcrsa@]"
                rf"|[#0+\-]*'[#0+\-']*{_PRINTF_REST}[diufFgG])")
# Inline patterns, in priority order: where two could match at the same place, the first wins.
PATTERNS: dict[str, str] = {
    # A sentinel bracket already in the text is itself protected, so that sentinels stay unique.
    "sentinel_char": r"[⟦⟧]",
    "inline_code": r"(?P<ticks>`+)(?!`)[^\n]*?(?<!`)(?P=ticks)(?!`)",
    "include": r"\{\*.*?\*\}",
    "html_comment": r"<!--.*?-->",
    # ICU MessageFormat plural / select: a span of its own, whose branches are translated one by
    # one (see icu.py), since a model that moves a sentinel between branches breaks the syntax
    ICU_KIND: r"\{\s*\w+\s*,\s*(?:plural|selectordinal|select)\s*,",  # the head (_MESSAGE_HEAD)
    QUOTED_KIND: QUOTED_PATTERN,  # inside an ICU message's branches only
    "placeholder": "|".join(
        [
            r"\{\{\{.*?\}\}\}",  # Handlebars raw {{{var}}}, before {{var}} takes two of its braces
            r"\{\{.*?\}\}",  # Jinja / Django / Handlebars variables
            r"\{%.*?%\}",  # template tags
            r"\{\s*\w+\s*,\s*choice\s*,",  # an ICU choice message, whole (its head: _MESSAGE_HEAD)
            r"\{\s*\w+\s*,\s*(?:number|date|time|spellout|ordinal|duration)\s*(?:,[^{}]*)?\}",
            r"\$\{[^{}\n]*\}",  # shell / JS template literals, ${var} and ${ var }
            # printf with a name or an argument index (%(name)s, %1$s) is never prose ...
            rf"%(?:\([^()\s]+\)|\d+\$){_PRINTF_SPEC}",
            # ... a bare one is, when a letter follows: German "50%ige" (see printf_glued)
            rf"%{_PRINTF_SPEC}(?![A-Za-z])",
            # str.format and ICU-style simple arguments: {0}, {name}, {x.y!r:>10}
            r"\{[A-Za-z_0-9]*(?:[.\[][^{}\s]*)?(?:![rsa])?(?::[^{}\s]*)?\}",
        ]
    ),
    # Message catalogs only (CATALOG_PATTERNS): a bare printf directive with a letter after it
    # ("%dpx", and in a c-format msgid even "%ige"), Laravel's ":name" (not after a word or a
    # colon, so "Note:" and "std::vector" stay prose), Qt's and KDE's arguments %1 ... %99
    # ("%L1" localized, "%1px" too; not "%100") and Qt's plural count "%n" (prose writes
    # "%50" in Turkish), and a shell, Perl or PHP variable "$name" (a letter after the "$", so
    # that "$5" is a price; not after a word or a backslash: "US$", "\$HOME").
    "printf_glued": rf"%{_PRINTF_SPEC}(?=[A-Za-z])",
    "laravel": r"(?<![\w:]):[^\W\d]\w*",
    "qt_arg": r"%L?(?:[1-9]\d?(?!\d)|n(?![A-Za-z0-9]))",
    "dollar_variable": r"(?<![\w\\])\$[^\W\d]\w*",
    "anchor": r"\{:?\s*[#.][^\s{}][^{}]*\}",  # heading anchors / attribute lists: { #anchor-id }
    "url": rf"(?:\b(?:https?|ftp)://|\bwww\.)(?:{_URL_CHAR}|\({_URL_CHAR}*\))*"
    rf"(?:[^\s<>\"'`()\[\]⟦⟧.,;:!?]|\({_URL_CHAR}*\))",
    "email": r"\b[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
    "html_tag": r"</?[A-Za-z][\w:.-]*(?:\s+[^<>]*?)?\s*/?>",
    "entity": r"&(?:[A-Za-z][A-Za-z0-9]{1,31}|#\d{1,7}|#[xX][0-9A-Fa-f]{1,6});",
    "footnote": r"\[\^[^\]\s]+\]",
    # A lone UTF-16 surrogate (JSON "\ud800") cannot be encoded as UTF-8: keep it from the model.
    "surrogate": r"[\ud800-\udfff]",
    HASH_KIND: HASH_PATTERN,  # inside an ICU plural's branches only
}
ALL_PATTERNS = frozenset(PATTERNS) - {HASH_KIND, QUOTED_KIND}
# Kinds that would hit ordinary prose ("50%ige", "see :name"): a segment's default (.po and
# JSON, message catalogs) has them, prose formats leave them out.
CATALOG_PATTERNS = frozenset({"printf_glued", "laravel", "qt_arg", "dollar_variable"})
PROSE_PATTERNS = ALL_PATTERNS - CATALOG_PATTERNS


@functools.cache
def _combined(kinds: frozenset[str]) -> re.Pattern[str] | None:
    chosen = [(k, p) for k, p in PATTERNS.items() if k in kinds]
    if not chosen:
        return None
    return re.compile("|".join(f"(?P<{k}>{p})" for k, p in chosen), re.DOTALL)


def find_spans(text: str, kinds: frozenset[str]) -> list[tuple[int, int, str]]:
    """``(start, end, kind)`` of every pattern match in ``text``, leftmost first, no overlaps."""
    pattern = _combined(kinds)
    if pattern is None:
        return []
    found: list[tuple[int, int, str]] = []
    index = 0
    while (match := pattern.search(text, index)) is not None:
        # ``lastgroup`` is the outer (kind) group: it closes after any group nested in it
        start, end, kind = match.start(), match.end(), match.lastgroup or ""
        resume = start + 1
        if _MESSAGE_HEAD.fullmatch(match.group()):
            # an ICU message runs to its closing brace; one that does not close is no span (and
            # nothing else starts with "{arg, plural,")
            end = argument_end(text, start) or start
        elif kind == QUOTED_KIND:  # apostrophes before "{", "}" or "#": the quote they start
            start, end = quoted_text(text, start, end)
            resume = match.end() - 1  # the "{" after pairs of them ("''{name}") may start a span
        if end > start:
            found.append((start, end, kind))
        index = max(end, resume)
    return found
