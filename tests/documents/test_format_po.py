"""gettext .po: empty entries filled, plural forms by the target language, comments and flags
kept, fuzzy by default, the rest of the file untouched; the result loads with polib and passes
msgfmt --check (where msgfmt is installed)."""

from __future__ import annotations

import gettext
import re
import shutil
import subprocess
from pathlib import Path

import polib
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from num2words import num2words

from polyseq.documents import check_preservation, translate_document
from polyseq.documents.formats.po import PluralRule, plural_forms, plural_rule
from polyseq.documents.protect import DocumentError, Segment, has_words, mask

MSGFMT = shutil.which("msgfmt")
WORDS = st.sampled_from(["Delete", "selected", "%(name)s", "%(count)d", "items", "<strong>",
                         "</strong>", "{0}", "Hello", "world", "naïve", "über", "%s", "100%%",
                         "https://example.com", "and", '"quoted"', "back\\slash"])
MSGIDS = st.lists(WORDS, min_size=1, max_size=8).map(" ".join)


def _has_prose(text: str) -> bool:
    return has_words(mask(Segment(text=text, raw=text)).text)


def _format_flag(text: str) -> list[str]:
    if "%(" in text or "%s" in text or "%%" in text:
        return ["python-format"]
    return []


@st.composite
def catalogs(draw: st.DrawFn) -> str:
    po = polib.POFile(wrapwidth=79)
    po.metadata = {"Project-Id-Version": "test", "Content-Type": "text/plain; charset=UTF-8",
                   "Content-Transfer-Encoding": "8bit"}
    seen: set[tuple[str, str]] = set()
    for number in range(draw(st.integers(1, 8))):
        msgid = f"{draw(MSGIDS)} {number}"
        plural = draw(st.booleans())
        entry = polib.POEntry(
            msgid=msgid,
            msgctxt=draw(st.sampled_from([None, "menu"])),
            comment=draw(st.sampled_from(["", "Translators: keep it short"])),
            tcomment=draw(st.sampled_from(["", "a translator's note"])),
            occurrences=[("app/views.py", str(number + 10))] if draw(st.booleans()) else [],
        )
        entry.flags = _format_flag(msgid)
        if plural:
            entry.msgid_plural = msgid + " (plural)"
            entry.msgstr_plural = {0: "", 1: ""}
        elif draw(st.booleans()):
            entry.msgstr = "Schon übersetzt"
        if (entry.msgctxt or "", msgid) not in seen:
            seen.add((entry.msgctxt or "", msgid))
            po.append(entry)
    return str(po)


LANGS = st.sampled_from(["de", "fr", "ru", "ja", "ar", "pl"])
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _msgfmt_ok(text: str, tmp_path: Path) -> None:
    if MSGFMT is None:
        return
    path = tmp_path / "out.po"
    path.write_text(text, encoding="utf-8")
    done = subprocess.run([MSGFMT, "--check", "-o", "/dev/null", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@SETTINGS
@given(catalogs(), LANGS, st.booleans())
def test_rewriting_fills_every_entry_and_keeps_the_rest(rewrite, tmp_path_factory, text: str,
                                                        lang: str, fuzzy: bool) -> None:
    out = translate_document(text, "po", rewrite, tgt_lang=lang, overwrite=True,
                             fuzzy=fuzzy).text
    before, after = polib.pofile(text), polib.pofile(out)
    nplurals = plural_forms(lang)[0]
    mixed = plural_rule("nplurals={}; plural={};".format(*plural_forms(lang))).mixed
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        assert (new.msgid, new.msgctxt, new.msgid_plural) == (old.msgid, old.msgctxt,
                                                              old.msgid_plural)
        assert (new.comment, new.tcomment, new.occurrences) == (old.comment, old.tcomment,
                                                                old.occurrences)
        assert [f for f in new.flags if f != "fuzzy"] == old.flags
        # a form for 1 and other numbers (Russian 21, 31 ...) is flagged for review in any case,
        # unless it was translated for one of them ("%(count)d", the only number placeholder
        # of WORDS, written as 21)
        counted = old.msgid_plural.count("%(count)d") == 1
        assert ("fuzzy" in new.flags) is (fuzzy or bool(old.msgid_plural and mixed and not counted))
        if old.msgid_plural:
            assert sorted(new.msgstr_plural) == list(range(nplurals))
            last = new.msgstr_plural[nplurals - 1]
            assert (last != old.msgid_plural) is _has_prose(old.msgid_plural)
        else:
            assert (new.msgstr != old.msgid) is _has_prose(old.msgid)
    assert after.metadata["Language"] == lang
    assert check_preservation(text, out, "po").ok
    _msgfmt_ok(out, tmp_path_factory.mktemp("po"))


@SETTINGS
@given(catalogs(), LANGS)
def test_only_empty_entries_are_filled_and_the_rest_is_byte_identical(
    identity, text: str, lang: str
) -> None:
    out = translate_document(text, "po", identity, tgt_lang=lang).text
    before, after = polib.pofile(text), polib.pofile(out)
    for old, new in zip(before, after, strict=True):
        if old.translated():
            assert new.msgstr == old.msgstr and "fuzzy" not in new.flags
            # the entry's lines are exactly as they were
            assert old.__unicode__(79) in out and old.__unicode__(79) in text
        elif old.msgid_plural:
            # a form for 1 alone or 0 and 1 gets the singular, the others the plural
            rule = plural_rule("nplurals={}; plural={};".format(*plural_forms(lang)))
            assert new.msgstr_plural == {
                i: old.msgid if i in rule.singular else old.msgid_plural
                for i in range(rule.nplurals)
            }
        else:
            assert new.msgstr == old.msgid and "fuzzy" in new.flags


@SETTINGS
@given(catalogs())
def test_a_fully_translated_catalog_comes_back_byte_for_byte(identity, text: str) -> None:
    done = translate_document(text, "po", identity, tgt_lang="de", fuzzy=False).text
    assert translate_document(done, "po", identity, tgt_lang="de").text == done


def test_plural_rule_tells_which_forms_are_singular() -> None:
    assert plural_rule("nplurals=2; plural=(n != 1);") == PluralRule(2, frozenset({0}))
    assert plural_rule("nplurals=2; plural=(n > 1);") == PluralRule(2, frozenset({0}))  # 0 and 1
    assert plural_rule("nplurals=1; plural=0;") == PluralRule(1, frozenset())
    assert plural_rule(
        "nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : "
        "n%100>=11 ? 4 : 5);") == PluralRule(6, frozenset({1}))
    assert plural_rule("nplurals=3; plural=({});".format(plural_forms("ru")[1])) == PluralRule(
        3, frozenset(), mixed=frozenset({0}))  # Russian: 1, 21, 31 ...


def test_header_language_decides_the_plural_count(rewrite) -> None:
    text = ('msgid ""\nmsgstr ""\n"Language: ru\\n"\n"Plural-Forms: nplurals=4; plural=(n%10==1 ? 0'
            ' : n%10==2 ? 1 : n%10==3 ? 2 : 3);\\n"\n\nmsgid "%(n)s file"\nmsgid_plural '
            '"%(n)s files"\nmsgstr[0] ""\nmsgstr[1] ""\nmsgstr[2] ""\nmsgstr[3] ""\n')
    out = translate_document(text, "po", rewrite, tgt_lang="ru").text
    entry = polib.pofile(out)[0]
    assert sorted(entry.msgstr_plural) == [0, 1, 2, 3]
    assert out.startswith(text.split("\n\n")[0])  # the header is untouched


@pytest.mark.parametrize(("text", "line"), [
    ('msgid "a"\nmsgstr "b"\n\nmsgid "c\nmsgstr ""\n', 4),
    ('msgid "a"\nmsgstr "b"\nbogus line\n', 3),
    ('msgid "a" "b"\nmsgstr "x"\n', 1),
    ('msgid "a"\nmsgstr "x \\"y" z"\n', 2),
])
def test_syntax_errors_name_file_and_line(identity, text: str, line: int) -> None:
    with pytest.raises(DocumentError) as error:
        translate_document(text, "po", identity, source="django.po")
    assert str(error.value).startswith(f"django.po, line {line}: not a valid .po catalog")


@pytest.mark.parametrize(("text", "line"), [
    ('msgid "x"\n', 1),
    ('msgid "a"\nmsgstr "b"\n\n#. note\nmsgid "c"\n\nmsgid "d"\nmsgstr ""\n', 5),
    ('msgid "file"\nmsgid_plural "files"\n', 1),
])
def test_a_msgid_without_msgstr_is_named_before_any_translation(text: str, line: int) -> None:
    calls: list[list[str]] = []
    with pytest.raises(DocumentError) as error:
        translate_document(text, "po", lambda texts: calls.append(texts) or texts, source="p1.po")
    assert str(error.value).startswith(f"p1.po, line {line}: msgid without msgstr") and not calls


def test_previous_msgids_need_no_msgstr(identity) -> None:
    text = '#, fuzzy\n#| msgid "old"\nmsgid "new"\nmsgstr ""\n\n#~ msgid "gone"\n#~ msgstr "weg"\n'
    assert translate_document(text, "po", identity, tgt_lang="de").text.count('msgstr "new"') == 1


def test_unknown_plural_rule_is_an_error_with_the_fix(identity) -> None:
    text = 'msgid "file"\nmsgid_plural "files"\nmsgstr[0] ""\nmsgstr[1] ""\n'
    with pytest.raises(DocumentError, match="Plural-Forms"):
        translate_document(text, "po", identity, tgt_lang="tlh", source="x.po")


def _upper(texts: list[str]) -> list[str]:
    return [text.upper() for text in texts]


def _msgfmt_ngettext(text: str, tmp_path: Path) -> gettext.GNUTranslations | None:
    """The catalog compiled by msgfmt --check and loaded as Python's gettext would at run
    time; None where msgfmt is not installed."""
    if MSGFMT is None:
        return None
    (tmp_path / "out.po").write_text(text, encoding="utf-8")
    done = subprocess.run([MSGFMT, "--check", "-o", str(tmp_path / "out.mo"),
                           str(tmp_path / "out.po")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with open(tmp_path / "out.mo", "rb") as mo:
        return gettext.GNUTranslations(mo)


FILES = ('#, c-format\nmsgid "%d file"\nmsgid_plural "%d files"\nmsgstr[0] ""\nmsgstr[1] ""\n')


def test_a_partly_translated_plural_keeps_its_filled_forms() -> None:
    text = ('msgid ""\nmsgstr ""\n"Language: de\\n"\n"Plural-Forms: nplurals=2; plural=(n != 1);\\n"'
            '\n\nmsgid "One file"\nmsgid_plural "%d files"\nmsgstr[0] ""\n"Eine "\n"Datei"\n'
            'msgstr[1] ""\n')
    out = translate_document(text, "po", _upper, tgt_lang="de").text
    # the translator's form keeps its very lines; only the empty one is filled
    assert out.endswith('msgstr[0] ""\n"Eine "\n"Datei"\nmsgstr[1] "%d FILES"\n')
    assert "#, fuzzy\n" in out
    overwritten = translate_document(text, "po", _upper, tgt_lang="de", overwrite=True).text
    assert overwritten.endswith('msgstr[0] "ONE FILE"\nmsgstr[1] "%d FILES"\n')


def test_a_catalog_translated_into_another_language_is_refused_unless_every_entry_is_redone(
        tmp_path: Path) -> None:
    text = ('msgid ""\nmsgstr ""\n"Language: de\\n"\n"Plural-Forms: nplurals=2; plural=(n != 1);\\n"'
            '\n\nmsgid "Open"\nmsgstr "Öffnen"\n\n' + FILES)
    with pytest.raises(DocumentError, match=r"de.po, header: the catalog is in de \(1 of its entries "
                                            r"translated, the first at line 6\), not uk: .* with "
                                            r"overwrite \(--overwrite\)"):
        translate_document(text, "po", _upper, tgt_lang="uk", source="de.po")
    redone = translate_document(text, "po", _upper, tgt_lang="uk", overwrite=True).text
    assert 'msgstr "OPEN"' in redone and "msgstr[2]" in redone
    _msgfmt_ok(redone, tmp_path)
    # into the catalog's own language, or a variant of it, its empty entries are filled
    assert 'msgstr "Öffnen"' in translate_document(text, "po", _upper, tgt_lang="de").text
    assert 'msgstr "Öffnen"' in translate_document(text.replace("Language: de", "Language: de_AT"), "po",
                                                   _upper, tgt_lang="de").text


@pytest.mark.parametrize("lang", ["fr", "pt_BR"])
def test_a_form_for_one_and_zero_takes_the_singular(tmp_path: Path, lang: str) -> None:
    out = translate_document(FILES, "po", _upper, tgt_lang=lang, fuzzy=False).text
    assert 'Plural-Forms: nplurals=2; plural=(n > 1);\\n"' in out
    assert out.endswith('msgstr[0] "%d FILE"\nmsgstr[1] "%d FILES"\n')
    assert "fuzzy" not in out
    catalog = _msgfmt_ngettext(out, tmp_path)
    if catalog is not None:
        assert [catalog.ngettext("%d file", "%d files", n) % n for n in (0, 1, 2)] == [
            "0 FILE", "1 FILE", "2 FILES"]


def _spelled(texts: list[str]) -> list[str]:
    """Upper-cases, and writes each number as a word: the number does not come back."""
    return [re.sub(r"\d+", lambda m: num2words(int(m.group(0))), text).upper() for text in texts]


def test_a_form_for_one_and_other_numbers_is_flagged_fuzzy_unless_translated_for_one(
    tmp_path: Path,
) -> None:
    # Russian form 0 holds 1, 21, 31 ...: translated for 21 ("21 files"), it fits them all, so
    # it needs no more review than any other form ...
    out = translate_document(FILES, "po", _upper, tgt_lang="ru", fuzzy=False).text
    assert "fuzzy" not in out
    assert out.endswith('msgstr[0] "%d FILES"\nmsgstr[1] "%d FILES"\nmsgstr[2] "%d FILES"\n')
    catalog = _msgfmt_ngettext(out, tmp_path)
    if catalog is not None:
        assert catalog.ngettext("%d file", "%d files", 21) == "%d FILES"
    # ... where it was not (the number did not come back, or there is no one number to write),
    # it keeps the plural text and asks for a translator, even where the caller wants no flags
    two = FILES.replace('"%d file"', '"%d of %d file"').replace('"%d files"', '"%d of %d files"')
    for text, translate in ((FILES, _spelled), (two, _upper)):
        out = translate_document(text, "po", translate, tgt_lang="ru", fuzzy=False).text
        assert '#, fuzzy, c-format\nmsgid "%d' in out
        catalog = _msgfmt_ngettext(out, tmp_path)
        entry = polib.pofile(text)[0]
        if catalog is not None:  # msgfmt leaves fuzzy entries out: the English stays until reviewed
            assert catalog.ngettext(entry.msgid, entry.msgid_plural, 21) == entry.msgid_plural
    # no second flag where the entry is flagged already
    flagged = FILES.replace("#, c-format", "#, fuzzy, c-format")
    assert translate_document(flagged, "po", _spelled, tgt_lang="ru").text.count("fuzzy") == 1
    # Japanese has one form for every number: nothing to tell apart, nothing to review
    assert "fuzzy" not in translate_document(FILES, "po", _upper, tgt_lang="ja",
                                             fuzzy=False).text


@pytest.mark.parametrize(("language", "tgt", "forms"), [
    ("pt_BR", "pt", "nplurals=2; plural=(n > 1);"),
    ("zh_Hans", "zh", "nplurals=1; plural=0;"),
])
def test_a_catalog_for_a_variant_of_the_target_keeps_its_header(
    tmp_path: Path, language: str, tgt: str, forms: str
) -> None:
    header = (f'msgid ""\nmsgstr ""\n"Language: {language}\\n"\n"X-Custom:   v\\n"\n'
              f'"Plural-Forms: {forms}\\n"\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n')
    out = translate_document(header + FILES, "po", _upper, tgt_lang=tgt).text
    assert out.startswith(header)
    assert check_preservation(header + FILES, out, "po").ok
    # without a Plural-Forms line, the variant's rule is added, not the base language's
    bare = header.replace(f'"Plural-Forms: {forms}\\n"\n', "")
    out = translate_document(bare + FILES, "po", _upper, tgt_lang=tgt).text
    assert out.startswith(bare.removesuffix("\n") + f'"Plural-Forms: {forms}\\n"\n\n')
    _msgfmt_ok(out, tmp_path)


def test_a_header_for_another_language_changes_its_language_and_plural_lines_alone(
    tmp_path: Path,
) -> None:
    header = ('# Catalog of the app.\nmsgid ""\nmsgstr ""\n"Project-Id-Version: app 1.0\\n"\n'
              '"X-Custom:   v\\n"\n"Language: en\\n"\n"Plural-Forms: nplurals=2; "\n'
              '"plural=(n != 1);\\n"\n"Report-Msgid-Bugs-To: a very long address that goes on "\n'
              '"and on <bugs@example.com>\\n"\n\n')
    out = translate_document(header + FILES, "po", _upper, tgt_lang="ru").text
    assert out.startswith(
        '# Catalog of the app.\nmsgid ""\nmsgstr ""\n"Project-Id-Version: app 1.0\\n"\n'
        '"X-Custom:   v\\n"\n"Language: ru\\n"\n"Plural-Forms: nplurals=3; plural=(n%10==1 && '
        'n%100!=11 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);\\n"\n'
        '"Report-Msgid-Bugs-To: a very long address that goes on "\n'
        '"and on <bugs@example.com>\\n"\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n')
    _msgfmt_ok(out, tmp_path)


def test_flags_on_several_lines_are_merged_into_one(tmp_path: Path) -> None:
    text = '#: app.py:3\n#, python-format\n#, no-wrap\nmsgid "%s file"\nmsgstr ""\n'
    out = translate_document(text, "po", _upper, tgt_lang="de").text
    assert out.endswith(
        '#: app.py:3\n#, fuzzy, python-format, no-wrap\nmsgid "%s file"\nmsgstr "%s FILE"\n')
    assert check_preservation(text, out, "po").ok
    _msgfmt_ok(out, tmp_path)


def test_grouped_printf_qt_and_shell_placeholders_survive_a_catalog(tmp_path: Path) -> None:
    header = 'msgid ""\nmsgstr ""\n"Language: de\\n"\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
    text = header + ('#, c-format\nmsgid "%\'d files, %\'.1f MB"\nmsgstr ""\n\n'
                     '#, qt-format\nmsgid "Copied %1 of %2 (%L3)"\nmsgstr ""\n\n'
                     '#, sh-format\nmsgid "Deleted $count files in $dir for $5"\nmsgstr ""\n')
    out = translate_document(text, "po", _upper, tgt_lang="de").text
    assert [entry.msgstr for entry in polib.pofile(out)] == [
        "%'d FILES, %'.1f MB", "COPIED %1 OF %2 (%L3)", "DELETED $count FILES IN $dir FOR $5"]
    assert check_preservation(text, out, "po").ok
    _msgfmt_ok(out, tmp_path)
