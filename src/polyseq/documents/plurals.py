"""Number-aware plural forms: a sample number for each plural category of a language (CLDR's, by
babel) or each plural form of a gettext catalog, and the sample put back as its placeholder.

A plural branch or form is translated with a sample number of its category written where its
``#`` or number placeholder was ("5 files", not "⟦1⟧ files"), so that the model inflects the words
for that number ("5 файлів", where "2 файли"); the number is then replaced by the placeholder
again. ``Plurals`` says which branches an ICU plural message (or a group of i18next's plural
keys in JSON) gets for the target language and which of the source's branches each one is
translated from.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

Number = int | Decimal
K = TypeVar("K", bound=Hashable)
N = TypeVar("N", bound=Number)

CATEGORIES = ("zero", "one", "two", "few", "many", "other")  # CLDR's order
# The integers a sample is chosen from, best first: the smallest above 1, since 0 and 1 often
# have words of their own ("no files", "a file") that would not fit the category's other numbers
# (Ukrainian "one" is 1, 21, 31 ...: "21 файл" fits them all); then 1 and 0.
INTEGERS: tuple[int, ...] = (*range(2, 201), 1, 0)
# For CLDR categories no small integer falls in: fractions (Russian "other": "1.5 файла") and
# large numbers (French "many": 1000000).
CANDIDATES: tuple[Number, ...] = (
    *INTEGERS, *(Decimal(f"{i}.{d}") for d in (5, 1, 2) for i in (1, 0, 2, 3)),
    1000, 10_000, 100_000, 1_000_000,
)


def pick_samples(choose: Callable[[Any], K], candidates: Iterable[N]) -> dict[K, N]:
    """The first candidate (best first) that ``choose`` maps to each of its values."""
    samples: dict[K, N] = {}
    for number in candidates:
        samples.setdefault(choose(number), number)
    return samples


@functools.cache
def _number_re(number: str) -> re.Pattern[str]:
    # a number on its own ("21", not the "21" of "121" or "2.21"); "1.5" may come back "1,5"
    whole, _, fraction = number.partition(".")
    body = re.escape(whole) + (rf"[.,]{re.escape(fraction)}" if fraction else "")
    return re.compile(rf"(?<!\d)(?<!\d[.,]){body}(?![.,]?\d)")


def count_number(text: str, number: str) -> int:
    """How often ``number`` stands on its own in ``text``."""
    return len(_number_re(number).findall(text))


def put_back(parts: Sequence[tuple[str, bool]], number: str,
             placeholder: str) -> list[tuple[str, bool]] | None:
    """``parts``, (text, whether it is a protected span's output), with the one ``number`` in
    the prose replaced by ``placeholder`` (as a span); None unless the number is there exactly
    once (the model wrote it as a word, dropped or repeated it)."""
    found = [(i, m) for i, (text, span) in enumerate(parts) if not span
             for m in _number_re(number).finditer(text)]
    if len(found) != 1:
        return None
    (index, match), = found
    text = parts[index][0]
    pieces = [(text[:match.start()], False), (placeholder, True), (text[match.end():], False)]
    return [*parts[:index], *[p for p in pieces if p[0]], *parts[index + 1:]]


@functools.cache
def cldr_rule(lang: str, ordinal: bool = False) -> Callable[[Any], str] | None:
    """A language's CLDR plural (or ordinal) rule, number -> category; None when babel does not
    know the language."""
    import babel  # the "documents" extra; imported when a document has a plural message

    code = re.split(r"[@.]", lang.replace("-", "_"))[0]
    try:
        locale = babel.Locale.parse(code)
    except (ValueError, babel.UnknownLocaleError):
        return None
    rule = locale.ordinal_form if ordinal else locale.plural_form
    return rule  # type: ignore[no-any-return]


@functools.cache
def cldr_samples(lang: str, ordinal: bool = False) -> dict[str, Number | None] | None:
    """Each CLDR category of a language (in CLDR's order) with its sample number, None for a
    category no candidate falls in; None when babel does not know the language."""
    rule = cldr_rule(lang, ordinal)
    if rule is None:
        return None
    found = pick_samples(rule, CANDIDATES)
    tags = set(getattr(rule, "tags", ())) | {"other"}
    return {category: found.get(category) for category in CATEGORIES if category in tags}


@dataclass(frozen=True)
class Branch:
    """A target category's branch: the source branch (selector) it is translated from and the
    sample number written in place of the source's ``#`` (None: translated with ``#`` kept).
    ``fallback`` is the source branch it takes where it cannot be translated for its number (the
    number did not come back, or the branch has no one ``#`` of its own to write it in): the
    one of its own category, else ``other``, as the target's runtime picked before."""

    category: str
    source: str
    sample: str | None
    fallback: str


@dataclass(frozen=True)
class Plurals:
    """The languages a document is translated between, for its plural messages."""

    source: str
    target: str

    def branches(self, kind: str, selectors: Collection[str]) -> list[Branch] | None:
        """The category branches a ``plural`` or ``selectordinal`` message with ``selectors`` gets
        in the target language: one for each of its CLDR categories, translated from the branch
        the source language would take for the category's sample number (``other`` when the
        message has no such branch). None where the message keeps its own: a select, a language
        babel does not know, a message without ``other``, or one whose categories are already
        the target's, each standing for the same numbers (English into German)."""
        if kind not in ("plural", "selectordinal"):
            return None
        ordinal = kind == "selectordinal"
        source, samples = cldr_rule(self.source, ordinal), cldr_samples(self.target, ordinal)
        have = {s for s in selectors if not s.startswith("=")}
        if source is None or samples is None or "other" not in have:
            return None
        branches = []
        for category, sample in samples.items():
            fallback = category if category in have else "other"
            if sample is None:
                branches.append(Branch(category, fallback, None, fallback))
                continue
            chosen = source(sample)
            branches.append(Branch(category, chosen if chosen in have else "other", str(sample),
                                   fallback))
        if {b.category for b in branches} == have and all(b.category == b.source for b in branches):
            return None
        return branches

    def key_forms(self, ordinal: bool, categories: Collection[str]) -> list[Branch] | None:
        """The forms an i18next group of plural keys (``file_one``, ``file_other``; ``ordinal``:
        ``place_ordinal_one`` ...) with ``categories`` gets in the target language, as
        ``branches`` gives an ICU message's; None where it keeps its own. i18next takes a
        ``_zero`` key for a count of 0 in every language (not for ordinals): it is kept where
        the target has no ``zero`` category, and it is the source's text for the number 0."""
        found = self.branches("selectordinal" if ordinal else "plural", categories)
        if found is None:
            return None
        zero = not ordinal and "zero" in categories
        forms = [Branch("zero", "zero", None, "zero")] if zero and found[0].category != "zero" else []
        for b in found:
            forms.append(Branch(b.category, "zero", b.sample, b.fallback)
                         if zero and b.sample == "0" else b)
        if {b.category for b in forms} == set(categories) and all(b.category == b.source for b in forms):
            return None
        return forms


def plurals_for(src_lang: str | None, tgt_lang: str | None) -> Plurals | None:
    """The languages for plural forms (English the default source); None without a target or
    into the source language itself (a correction keeps its messages as they are)."""
    source = src_lang or "en"
    if not tgt_lang or tgt_lang.replace("-", "_").lower() == source.replace("-", "_").lower():
        return None
    return Plurals(source, tgt_lang)


# A catalog's plural text: which placeholder stands for the number. Integer printf directives
# (%d, %i, %u, with flags, width, length, argument index or name: %ld, %1$d, %(size)d), Qt's
# %n, and any placeholder whose name says it is a count (%(count)s, {n}, {{ num }}, :count, $n;
# i18next's unescaped {{- count}} and Jinja's {{- n -}} too).
COUNT_NAMES = frozenset({"count", "counter", "n", "num", "number"})
_INTEGER_DIRECTIVE = re.compile(
    r"%(?:\([^()\s]+\)|\d+\$)?[#0+\-']*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|L|q|j|z|t)?[diu]"
    r"|%L?n")
_NAMED = re.compile(r"%\((\w+)\)\w|\{+-?\s*(\w+)\s*(?:[.\[!:,][^{}]*)?-?\}+|:(\w+)|\$(\w+)")
_POSITIONAL_BRACE = re.compile(r"\{0?\}")


def number_placeholder(placeholders: Sequence[str], brace_format: bool = False) -> int | None:
    """Which of a plural text's ``placeholders`` (in order) stands for the number: an integer
    printf directive or a placeholder named count, counter, n, num or number; or, in a
    python-brace-format entry (``brace_format``), ``{}`` or ``{0}`` where it is the text's only
    placeholder. None unless exactly one does: "%d of %d" or "%s files" is left alone."""
    def is_number(text: str) -> bool:
        named = _NAMED.fullmatch(text)
        return bool(_INTEGER_DIRECTIVE.fullmatch(text)
                    or (named and next(g for g in named.groups() if g).lower() in COUNT_NAMES)
                    or (brace_format and len(placeholders) == 1 and _POSITIONAL_BRACE.fullmatch(text)))

    found = [i for i, text in enumerate(placeholders) if is_number(text)]
    return found[0] if len(found) == 1 else None
