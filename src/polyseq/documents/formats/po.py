"""gettext .po catalogs: msgid -> msgstr, plural forms, comments and flags kept.

polib parses the catalog and renders the new msgstr lines; the file is then edited in place,
entry by entry, so that every entry we do not translate, every comment and the header stay
byte for byte as they were. Only empty msgstrs (and plural forms) are filled unless
``overwrite``; a filled entry is flagged ``fuzzy`` (for a human to review) unless ``fuzzy=False``,
and in any case where a plural form for 1 also serves other numbers (Russian 21, 31 ...) and was
not translated for one of them. A plural entry gets as many forms as the target language has:
from the catalog header when it is for that language or a variant of it (pt_BR for pt), else
from the table below (and the header then says so, on its Language and Plural-Forms lines alone).
Where the target tells more forms apart than singular and plural, each form is translated for a
sample number of its own, written in place of the number placeholder (``plurals``).
"""

from __future__ import annotations

import functools
import gettext
import re
from collections.abc import Sequence
from dataclasses import dataclass

import polib

from polyseq.documents.plurals import INTEGERS, pick_samples
from polyseq.documents.protect import (
    DocumentError,
    Format,
    FormatOptions,
    ParsedDocument,
    Segment,
    where,
    with_number,
)

WRAP_WIDTH = 79  # what msgmerge and xgettext write

# GNU gettext's plural rules (gettext manual, "Plural forms") for common languages.
_ONE = (1, "0")
_NOT_ONE = (2, "(n != 1)")
_ABOVE_ONE = (2, "(n > 1)")
_SLAVIC = (3, "(n%10==1 && n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2)")
PLURAL_FORMS: dict[str, tuple[int, str]] = {
    **dict.fromkeys(["ja", "ko", "zh", "vi", "th", "id", "ms", "lo", "km", "my", "ka"], _ONE),
    **dict.fromkeys(
        [
            "en", "de", "nl", "sv", "da", "no", "nb", "nn", "fo", "fi", "et", "el", "he", "hu",
            "it", "es", "pt", "eu", "eo", "bg", "ca", "gl", "af", "sq", "az", "hi", "bn", "ur",
            "fa", "ta", "te", "mr", "kk", "ky", "mn", "sw",
        ],
        _NOT_ONE,
    ),
    **dict.fromkeys(["fr", "pt_br", "tr", "oc", "fil"], _ABOVE_ONE),
    **dict.fromkeys(["ru", "uk", "be", "sr", "hr", "bs"], _SLAVIC),
    "cs": (3, "(n==1) ? 0 : (n>=2 && n<=4) ? 1 : 2"),
    "sk": (3, "(n==1) ? 0 : (n>=2 && n<=4) ? 1 : 2"),
    "pl": (3, "(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2)"),
    "lt": (3, "(n%10==1 && n%100!=11 ? 0 : n%10>=2 && (n%100<10 || n%100>=20) ? 1 : 2)"),
    "lv": (3, "(n%10==1 && n%100!=11 ? 0 : n != 0 ? 1 : 2)"),
    "ro": (3, "(n==1 ? 0 : (n==0 || (n%100 > 0 && n%100 < 20)) ? 1 : 2)"),
    "ga": (3, "n==1 ? 0 : n==2 ? 1 : 2"),
    "sl": (4, "(n%100==1 ? 0 : n%100==2 ? 1 : n%100==3 || n%100==4 ? 2 : 3)"),
    "ar": (6, "(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : n%100>=11 ? 4 : 5)"),
}
_NPLURALS = re.compile(r"nplurals\s*=\s*(\d+)")
# A quoted PO string, the only thing a keyword or continuation line may hold after its keyword.
_PO_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_KEYWORD_LINE = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(.*)$")


def _lang_key(lang: str) -> str:
    return lang.replace("-", "_").lower()


def plural_forms(lang: str) -> tuple[int, str] | None:
    """``(nplurals, expression)`` for a language code, or None when unknown."""
    key = _lang_key(lang)
    return PLURAL_FORMS.get(key) or PLURAL_FORMS.get(key.split("_")[0])


def load(text: str, source: str | None = None) -> polib.POFile:
    """Parse a catalog with polib, turning its syntax errors into DocumentErrors."""
    _check_strings(text, source)
    try:
        return polib.pofile(text, wrapwidth=WRAP_WIDTH)
    except (OSError, ValueError) as err:
        found = re.search(r"line (\d+)\)?:?\s*(.*)", str(err))
        place = f"line {found.group(1)}" if found else "catalog"
        detail = (found.group(2) if found else "") or "syntax error"
        raise DocumentError(
            f"{where(source, place)}: not a valid .po catalog ({detail}). Fix that line "
            "(msgfmt --check-format FILE reports the same) and try again."
        ) from err


def _check_strings(text: str, source: str | None) -> None:
    # polib reads `msgid "abc` (no closing quote) as "ab" without complaint, and an entry without
    # msgstr as one to fill, which has nowhere to go; catch both here.
    unanswered: int | None = None  # the line of a msgid that no msgstr has followed yet
    for number, line in enumerate(text.splitlines(), start=1):
        body = line.strip()
        previous = body.startswith(("#|", "#~|"))  # a previous msgid (msgmerge) has no msgstr
        for marker in ("#~", "#|"):  # obsolete and previous entries hold the same syntax
            if body.startswith(marker):
                body = body[len(marker):].lstrip()
        match = _KEYWORD_LINE.match(body)
        rest = match.group(2) if match else body if body.startswith('"') else None
        if rest is not None and not _PO_STRING.fullmatch(rest.strip()):
            raise DocumentError(
                f"{where(source, f'line {number}')}: not a valid .po catalog (expected one "
                f'quoted string, found {rest.strip()[:40]!r}). Close the quotes or escape \\" '
                "and try again."
            )
        keyword = match.group(1) if match and not previous else ""
        if keyword == "msgid" and unanswered is not None:
            raise _without_msgstr(unanswered, source)
        if keyword == "msgid" or keyword.startswith("msgstr"):
            unanswered = number if keyword == "msgid" else None
    if unanswered is not None:
        raise _without_msgstr(unanswered, source)


def _without_msgstr(line: int, source: str | None) -> DocumentError:
    return DocumentError(
        f"{where(source, f'line {line}')}: msgid without msgstr; not a valid .po catalog. Add "
        'msgstr "" after it (msgfmt --check-format FILE reports the same) and try again.'
    )


@dataclass
class _Entry:
    """An entry to fill: where its block lies in the file and its segments."""

    entry: polib.POEntry
    start: int  # first line of the entry's block (0-based)
    end: int  # one past its last line
    segments: list[Segment]  # each once
    forms: list[int]  # a plural entry's msgstr[i] is the output of segments[forms[i]]


def _needs_translation(entry: polib.POEntry, overwrite: bool) -> bool:
    if entry.obsolete or not entry.msgid:
        return False
    if overwrite:
        return True
    if entry.msgid_plural:
        return not entry.msgstr_plural or not all(entry.msgstr_plural.values())
    return not entry.msgstr


@dataclass(frozen=True)
class PluralRule:
    """Which source text each plural form takes: a form for 1 (and maybe 0) alone takes the
    singular msgid, every other one the plural msgid."""

    nplurals: int
    singular: frozenset[int]  # forms for 1 alone or 0 and 1 (French, pt_BR)
    # Forms for 1 and other numbers (Russian 1, 21, 31 ...): no English text fits them all, so
    # they take the plural one and their entry is flagged fuzzy for a translator.
    mixed: frozenset[int] = frozenset()


@functools.cache
def plural_rule(value: str) -> PluralRule:
    """The PluralRule of a Plural-Forms value."""
    found = _NPLURALS.search(value)
    nplurals = int(found.group(1)) if found else 2
    expression = re.search(r"plural\s*=\s*([^;]+)", value)
    try:
        choose = gettext.c2py(expression.group(1) if expression else "")
        numbers: dict[int, set[int]] = {}
        for n in range(1001):
            numbers.setdefault(choose(n), set()).add(n)
    except (ValueError, SyntaxError, ZeroDivisionError):
        return PluralRule(nplurals, frozenset({0} if nplurals > 1 else ()))
    # A language with one form for every number (Japanese) has nothing to tell apart.
    with_one = {form for form, ns in numbers.items() if 1 in ns and len(numbers) > 1}
    singular = frozenset(form for form in with_one if numbers[form] <= {0, 1})
    return PluralRule(nplurals, singular, frozenset(with_one - singular))


@functools.cache
def form_samples(value: str) -> dict[int, int]:
    """A sample number for each form of a Plural-Forms value: the smallest above 1 that takes
    it, else 1, else 0 (Ukrainian: 21, 2, 5); empty where the expression does not evaluate."""
    expression = re.search(r"plural\s*=\s*([^;]+)", value)
    try:
        return pick_samples(gettext.c2py(expression.group(1) if expression else ""), INTEGERS)
    except (ValueError, SyntaxError, ZeroDivisionError):
        return {}


def _plural_segments(entry: polib.POEntry, rule: PluralRule, samples: dict[int, int],
                     place: str, overwrite: bool) -> tuple[list[Segment], list[int]]:
    """A plural entry's segments and the one for each form. A form for 1 alone (or 0 and 1)
    takes the msgid, every other one the msgid_plural; where ``samples`` are given (the target
    tells more forms apart than that), each is translated for its sample number (but for the
    forms a translator filled, which stay as they are)."""
    texts = {text: Segment(text=text, raw=text, where=place)
             for text in (entry.msgid, entry.msgid_plural)}
    chosen = []
    for form in range(rule.nplurals):
        plain = texts[entry.msgid if form in rule.singular else entry.msgid_plural]
        filled = not overwrite and entry.msgstr_plural.get(form)
        numbered = form in samples and not filled
        chosen.append(_numbered(plain, samples[form], entry.flags) if numbered else plain)
    segments = list({id(s): s for s in chosen}.values())
    return segments, [segments.index(s) for s in chosen]


def _numbered(segment: Segment, number: int, flags: Sequence[str]) -> Segment:
    """``segment`` with ``number`` in place of its number placeholder (``protect.with_number``),
    or as it is where there is none or the number is in its text already."""
    found = with_number(segment, str(number), brace_format="python-brace-format" in flags)
    return segment if found is None else found


def _tells_apart(rule: PluralRule) -> bool:
    """Whether a rule has forms that neither the msgid nor the msgid_plural fits: one for 1 and
    other numbers, or more than one for the numbers English gives the plural."""
    return bool(rule.mixed) or rule.nplurals - len(rule.singular) > 1


@dataclass(frozen=True)
class _Header:
    """The plural rule to write forms by, and what the header must say for the target."""

    plural_forms: str  # the rule in effect, "nplurals=N; plural=EXPR;"
    language: str | None = None  # new Language value, when the catalog was for another one
    rewrite_plural: bool = False  # whether the header must be given ``plural_forms``


def _for_target(language: str, tgt: str) -> bool:
    """Whether a catalog's Language is the target or a variant of it (pt_BR, zh_Hans, sr@latin
    for pt, zh, sr): a variant knows its plural rule better than our table for the base."""
    key = _lang_key(language)
    return _lang_key(tgt) in (key, re.split(r"[_@.]", key)[0])


def _check_language(po: polib.POFile, entries: list[polib.POEntry], options: FormatOptions) -> None:
    """Refuse to fill the empty entries of a catalog in another language than the target: its
    translated entries would stay in that language under the target's header (and its plural
    forms count)."""
    language, tgt = po.metadata.get("Language", ""), options.tgt_lang or ""
    if options.overwrite or not language or not tgt or _for_target(language, tgt):
        return
    filled = [e for e in entries if not e.obsolete and e.msgid
              and (e.msgstr or any(e.msgstr_plural.values()))]
    if filled:
        raise DocumentError(
            f"{where(options.source, 'header')}: the catalog is in {language} ({len(filled):,} of its "
            f"entries translated, the first at line {filled[0].linenum}), not {tgt}: filling only its empty "
            f"entries would leave those in {language}. Translate every entry into {tgt} with "
            f"overwrite (--overwrite), or start from the template (.pot) or a catalog in {tgt}.")


def _plan_header(po: polib.POFile, options: FormatOptions, needs_plurals: bool) -> _Header:
    current = po.metadata.get("Plural-Forms", "")
    language = po.metadata.get("Language", "")
    tgt = options.tgt_lang or ""
    retarget = bool(tgt) and not _for_target(language, tgt)
    # A catalog that stays in its Language (pt_BR) takes that variant's rule, not the base's.
    table = plural_forms(tgt) if retarget else plural_forms(language) or plural_forms(tgt)
    rule = f"nplurals={table[0]}; plural={table[1]};" if table else ""
    if retarget:
        if table:
            return _Header(rule, tgt, rewrite_plural=True)
        if not needs_plurals:
            return _Header("nplurals=2; plural=(n != 1);", tgt)
    elif _NPLURALS.search(current):
        return _Header(current)
    elif table:
        return _Header(rule, rewrite_plural=True)
    elif not needs_plurals:
        return _Header("nplurals=2; plural=(n != 1);")
    raise DocumentError(
        f"{where(options.source, 'header')}: the catalog has plural entries but polyseq "
        "cannot tell how many plural forms the target language has. Add a "
        "'Plural-Forms: nplurals=N; plural=EXPR;' header for it and try again."
    )


def parse(text: str, options: FormatOptions) -> ParsedDocument:
    po = load(text, options.source)
    lines = text.splitlines(keepends=True)
    entries = sorted(po, key=lambda e: e.linenum)
    starts = [max(e.linenum - 1, 0) for e in entries] + [len(lines)]
    chosen = [i for i, entry in enumerate(entries) if _needs_translation(entry, options.overwrite)]
    _check_language(po, entries, options)
    needs_plurals = any(entries[i].msgid_plural for i in chosen)
    header = _plan_header(po, options, needs_plurals) if chosen else _Header("")
    rule = plural_rule(header.plural_forms)
    samples = form_samples(header.plural_forms) if _tells_apart(rule) else {}
    todo: list[_Entry] = []
    for i in chosen:
        entry = entries[i]
        place = f"line {entry.linenum} (msgid {entry.msgid[:40]!r})"
        segments, forms = [Segment(text=entry.msgid, raw=entry.msgid, where=place)], list[int]()
        if entry.msgid_plural:
            segments, forms = _plural_segments(entry, rule, samples, place, options.overwrite)
        todo.append(_Entry(entry, starts[i], starts[i + 1], segments, forms))
    protected = structure(po)

    def build(outputs: Sequence[str], fell_back: frozenset[Segment]) -> str:
        it = iter(outputs)
        new_lines = list(lines)
        # Edit from the end so that earlier line numbers stay valid.
        edits = [(item, [next(it) for _ in item.segments]) for item in todo]
        for item, texts in reversed(edits):
            forms = [item.segments[k] for k in item.forms]
            # forms for 1 and other numbers that were not translated for one of those numbers
            unsure = {i for i in rule.mixed if i < len(forms)
                      and (forms[i].sample is None or forms[i] in fell_back)}
            block = _render_entry(new_lines[item.start:item.end], item.entry,
                                  [texts[k] for k in item.forms] or texts, options, unsure)
            new_lines[item.start:item.end] = block
        if header.language or header.rewrite_plural:
            _set_header(new_lines, po, header, starts[0])
        return "".join(new_lines)

    segments = [s for item in todo for s in item.segments]
    return ParsedDocument(segments, protected, build)


def structure(po: polib.POFile) -> list[tuple[str, str]]:
    """What must survive in every entry: its msgid, context, comments and flags."""
    kept: list[tuple[str, str]] = []
    for entry in po:
        if entry.obsolete:
            continue
        name = f"{entry.msgctxt or ''}\x04{entry.msgid}"
        kept.append(("po_msgid", name + f"\x00{entry.msgid_plural or ''}"))
        if entry.comment or entry.tcomment or entry.occurrences:
            kept.append(("po_comment", name + f"\x00{entry.comment}{entry.tcomment}"))
        kept.extend(("po_flag", f"{name}\x00{f}") for f in entry.flags if f != "fuzzy")
    return kept


def _newline(lines: Sequence[str]) -> str:
    for line in lines:
        stripped = line.rstrip("\r\n")
        if stripped != line:
            return line[len(stripped):]
    return "\n"


def _msgstr_lines(entry: polib.POEntry, texts: list[str], nl: str) -> list[str]:
    """The msgstr lines for ``texts``: one per plural form of a plural entry, else one."""
    if entry.msgid_plural:
        dummy = polib.POEntry(msgid="", msgid_plural="", msgstr_plural=dict(enumerate(texts)))
    else:
        dummy = polib.POEntry(msgid="", msgstr=texts[0])
    rendered = dummy.__unicode__(WRAP_WIDTH).split("\n")
    first = next(i for i, line in enumerate(rendered) if line.startswith("msgstr"))
    return [line + nl for line in rendered[first:] if line]


def _by_form(lines: Sequence[str]) -> dict[int, list[str]]:
    """msgstr[i] lines, each with its continuation lines, by form."""
    forms: dict[int, list[str]] = {}
    index = -1
    for line in lines:
        found = re.match(r"\s*msgstr\[(\d+)\]", line)
        index = int(found.group(1)) if found else index
        forms.setdefault(index, []).append(line)
    return forms


def _render_entry(
    block: list[str],
    entry: polib.POEntry,
    texts: list[str],
    options: FormatOptions,
    unsure: set[int],
) -> list[str]:
    nl = _newline(block)
    msgid_at = next(i for i, line in enumerate(block) if line.lstrip().startswith("msgid"))
    msgstr_at = next(i for i, line in enumerate(block) if line.lstrip().startswith("msgstr"))
    msgstr_end = msgstr_at
    while msgstr_end < len(block) and block[msgstr_end].lstrip().startswith(("msgstr", '"')):
        msgstr_end += 1
    msgstr = _msgstr_lines(entry, texts, nl)
    # Without overwrite, plural forms a translator filled stay as they were, line for line.
    kept = set() if options.overwrite else {i for i, s in entry.msgstr_plural.items() if s}
    if kept:
        old = _by_form(block[msgstr_at:msgstr_end])
        msgstr = [line for i, lines in _by_form(msgstr).items()
                  for line in (old[i] if i in kept else lines)]
    new = block[:msgstr_at] + msgstr + block[msgstr_end:]
    # A form we filled for 1 and other numbers, not translated for one of them, is wrong for
    # some: flag it even when the caller asked for no fuzzy flags.
    guessed = bool(entry.msgid_plural) and bool(unsure - kept)
    if (options.fuzzy or guessed) and "fuzzy" not in entry.flags:
        flags_line = "#, " + ", ".join(["fuzzy", *entry.flags]) + nl
        flag_at = [i for i in range(msgid_at) if new[i].startswith("#,")]
        if flag_at:
            # entry.flags holds the flags of every "#," line: all go on the first one.
            new[flag_at[0]] = flags_line
            for i in reversed(flag_at[1:]):
                del new[i]
        else:
            # Flags go after the translator, extracted and reference comments, before any
            # "#|" previous-msgid lines and msgctxt (the order gettext writes).
            at = next(
                i for i in range(msgid_at + 1) if new[i].startswith(("#|", "msgctxt", "msgid"))
            )
            new.insert(at, flags_line)
    return new


def _set_header(lines: list[str], po: polib.POFile, header: _Header, end: int) -> None:
    """Give the header (or a new one) the new Language / Plural-Forms, its other fields kept."""
    changes: dict[str, str] = {}
    if header.language:
        changes["Language"] = header.language
    if header.rewrite_plural:
        changes["Plural-Forms"] = header.plural_forms
    if "Content-Type" not in po.metadata:
        changes["Content-Type"] = "text/plain; charset=UTF-8"
    nl = _newline(lines)
    at = next((i for i in range(end) if lines[i].startswith('msgid ""')), None)
    if at is None:  # no header yet: put one first
        po.metadata.update(changes)
        lines[0:0] = [*_render_header(po, nl), nl]
        return
    stop = at + 1
    while stop < len(lines) and lines[stop].lstrip().startswith(("msgstr", '"')):
        stop += 1
    edited = _edit_fields(lines[at + 1:stop], changes, nl)
    if edited is None:
        po.metadata.update(changes)
        lines[at:stop] = _render_header(po, nl)
    else:
        lines[at + 1:stop] = edited


def _render_header(po: polib.POFile, nl: str) -> list[str]:
    rendered = po.metadata_as_entry().__unicode__(WRAP_WIDTH).split("\n")
    return [line + nl for line in rendered if line and not line.startswith("#")]


def _edit_fields(msgstr: list[str], changes: dict[str, str], nl: str) -> list[str] | None:
    """The header's msgstr lines with ``changes`` made: a changed field's lines replaced, a
    missing field added last, every other line as it was. None when the lines do not split
    into fields (two fields on one line, text on the msgstr line, a last field without its
    newline): polib then renders the whole header."""
    if not msgstr or not re.fullmatch(r'msgstr\s*""', msgstr[0].strip()):
        return None
    todo = dict(changes)
    edited, field, text = [msgstr[0]], [], ""
    for line in msgstr[1:]:
        piece = polib.unescape(line.strip()[1:-1])
        if "\n" in piece[:-1]:
            return None
        field.append(line)
        text += piece
        if text.endswith("\n"):
            name = text.partition(":")[0].strip()
            edited += [_field_line(name, todo.pop(name), nl)] if name in todo else field
            field, text = [], ""
    if field:  # a last field without its "\n"
        return None
    return edited + [_field_line(name, value, nl) for name, value in todo.items()]


def _field_line(name: str, value: str, nl: str) -> str:
    return '"' + polib.escape(f"{name}: {value}\n") + '"' + nl


FORMAT = Format(
    name="po",
    extensions=(".po", ".pot"),
    parse=parse,
    description="gettext catalogs: msgid -> msgstr, plural forms, fuzzy flags",
)


def translated_pairs(po: polib.POFile) -> list[tuple[str, str, str]]:
    """``(place, source text, translated text)`` for every filled form of every entry: what
    a preservation check compares (a form for 1 alone or 0 and 1 translates the msgid, the
    others the plural)."""
    pairs: list[tuple[str, str, str]] = []
    singular_forms = plural_rule(po.metadata.get("Plural-Forms", "")).singular
    for entry in po:
        if entry.obsolete or not entry.msgid:
            continue
        place = f"line {entry.linenum} (msgid {entry.msgid[:40]!r})"
        if not entry.msgid_plural:
            if entry.msgstr:
                pairs.append((place, entry.msgid, entry.msgstr))
            continue
        for index, form in sorted(entry.msgstr_plural.items()):
            original = entry.msgid if index in singular_forms else entry.msgid_plural
            if form:
                pairs.append((f"{place} msgstr[{index}]", original, form))
    return pairs
