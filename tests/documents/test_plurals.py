"""Number-aware plural forms: an ICU plural gets the target language's CLDR categories, a .po
plural entry one text per form, each translated with a sample number of its category in place of
``#`` or the number placeholder, which comes back where the number was."""

from __future__ import annotations

import gettext
import json
import re
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import polib
import pytest
from babel import Locale
from num2words import num2words

from polyseq.documents import check_preservation, translate_document
from polyseq.documents.formats.po import form_samples, plural_forms
from polyseq.documents.icu import split_message, unquoted_hashes
from polyseq.documents.plurals import cldr_samples, number_placeholder
from polyseq.documents.translate import plurals_for

MSGFMT = shutil.which("msgfmt")
NUMBER_AND_FILES = re.compile(r"(\d+(?:\.\d+)?) FILES?")


def inflecting(lang: str):
    """A fake model into ``lang``: upper-cases, and writes "files" after a number as FILE-<its
    CLDR category in ``lang``>, as a model that inflects for the number does ("5 файлів")."""
    rule = Locale.parse(lang).plural_form

    def translate(texts: list[str]) -> list[str]:
        return [NUMBER_AND_FILES.sub(lambda m: f"{m.group(1)} FILE-{rule(Decimal(m.group(1))).upper()}",
                                     text.upper()) for text in texts]

    return translate


def ukrainian(texts: list[str]) -> list[str]:
    """A fake English -> Ukrainian model for "N file(s)": the word takes the number's form."""
    def word(number: str) -> str:
        if "." in number:
            return "файлу"
        n = int(number)
        if n % 10 == 1 and n % 100 != 11:
            return "файл"
        return "файли" if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14 else "файлів"

    out = [re.sub(r"(\d+(?:\.\d+)?) files?", lambda m: f"{m.group(1)} {word(m.group(1))}", t)
           for t in texts]
    return [t.replace("files", "файли").replace("file", "файл").replace("deleted", "видалено")
            for t in out]


def spelled(texts: list[str]) -> list[str]:
    """Writes each number as a word (the number does not come back)."""
    return [re.sub(r"\d+(?:\.\d+)?", lambda m: num2words(Decimal(m.group(0))), t).upper()
            for t in texts]


def dropped(texts: list[str]) -> list[str]:
    return [re.sub(r"\d+(?:\.\d+)?\s*", "", t).upper() for t in texts]


def repeated(texts: list[str]) -> list[str]:
    return [re.sub(r"\d+(?:\.\d+)?", lambda m: f"{m.group(0)} ({m.group(0)})", t).upper() for t in texts]


def _selectors(message: str) -> list[str]:
    parsed = split_message(message)
    assert parsed is not None, message
    return [branch.selector for branch in parsed.branches]


MESSAGE = "You have {count, plural, =0 {no files} one {# file} other {# files}}."
TARGETS = {  # the target's categories, each with the text its branch is translated from
    "uk": {"one": "21 files", "few": "2 files", "many": "5 files", "other": "1.5 files"},
    "ru": {"one": "21 files", "few": "2 files", "many": "5 files", "other": "1.5 files"},
    "pl": {"one": "1 file", "few": "2 files", "many": "5 files", "other": "1.5 files"},
    "cs": {"one": "1 file", "few": "2 files", "many": "1.5 files", "other": "5 files"},
}


@pytest.mark.parametrize("lang", sorted(TARGETS))
def test_an_icu_plural_gets_the_target_languages_categories(lang: str, recording) -> None:
    spy, calls = recording(inflecting(lang))
    source = json.dumps({"a": MESSAGE})
    result = translate_document(source, "json", spy, tgt_lang=lang)
    out = json.loads(result.text)["a"]
    # each category's branch was translated for a number of that category, "#" back in its place
    branches = " ".join(f"{category} {{# FILE-{category.upper()}}}" for category in TARGETS[lang])
    assert out == f"YOU HAVE {{count, plural, =0 {{NO FILES}} {branches}}}."
    assert _selectors(out[len("YOU HAVE "):-1]) == ["=0", *TARGETS[lang]]
    assert set(TARGETS[lang].values()) <= set(calls)
    assert result.summary.plural_samples == 4 and result.summary.plural_fallbacks == 0
    assert check_preservation(source, result.text, "json").ok


def test_a_ukrainian_plural_reads_as_ukrainian(recording) -> None:
    spy, calls = recording(ukrainian)
    out = translate_document("{n, plural, one {# file deleted} other {# files deleted}}", "plain",
                             spy, src_lang="en", tgt_lang="uk").text
    assert out == ("{n, plural, one {# файл видалено} few {# файли видалено} "
                   "many {# файлів видалено} other {# файлу видалено}}")
    assert {"21 files deleted", "2 files deleted", "5 files deleted", "1.5 files deleted"} <= set(calls)


@pytest.mark.parametrize("translate", [spelled, dropped, repeated])
def test_a_number_that_does_not_come_back_once_falls_back_on_the_branch_with_its_hash(
    translate, recording
) -> None:
    spy, calls = recording(translate)
    result = translate_document(MESSAGE, "plain", spy, tgt_lang="uk")
    # the target's categories still, each translated as before, "#" kept from the model: from the
    # branch of its own category ("one", for 1 and 21 too), else "other"
    assert result.text == ("YOU HAVE {count, plural, =0 {NO FILES} one {# FILE} few {# FILES} "
                           "many {# FILES} other {# FILES}}.")
    assert {"21 files", "⟦1⟧ file", "⟦1⟧ files", "2 files"} <= set(calls)
    assert result.summary.plural_samples == 4 and result.summary.plural_fallbacks == 4
    assert check_preservation(MESSAGE, result.text, "plain").ok


def test_english_and_german_keep_todays_plural_and_get_their_ordinals(recording) -> None:
    ordinals = "the {n, selectordinal, one {#st} two {#nd} few {#rd} other {#th}} try"
    text = json.dumps({"a": MESSAGE, "b": ordinals})
    upper = inflecting("en")
    unchanged = translate_document(text, "json", upper).text  # no target: as before
    for lang in ("en", "de"):
        spy, calls = recording(upper)
        result = translate_document(text, "json", spy, src_lang="en", tgt_lang=lang)
        out = json.loads(result.text)
        # the plural: same categories for the same numbers, translated as before ("#" protected)
        assert out["a"] == json.loads(unchanged)["a"]
        assert [call for call in calls if "file" in call] == ["no files", "⟦1⟧ file", "⟦1⟧ files"]
        # German ordinals have one category (2. 3. 21.); English keeps its four
        ordinal = out["b"][len("THE "):-len(" TRY")]
        assert _selectors(ordinal) == (["one", "two", "few", "other"] if lang == "en" else ["other"])
        assert result.summary.plural_samples == (0 if lang == "en" else 1)
    assert "2nd" in calls  # German "other" taken from English "two", for 2


def test_select_and_unknown_languages_keep_their_selectors_and_nested_plurals_change(rewrite) -> None:
    nested = ("{g, select, female {{n, plural, one {her # file} other {her # files}}} "
              "other {{n, plural, one {their file} other {their # files}}}}")
    out = translate_document(nested, "plain", inflecting("uk"), tgt_lang="uk").text
    assert _selectors(out) == ["female", "other"]
    outer = split_message(out)
    assert outer is not None
    for branch in outer.branches:
        assert _selectors(branch.text) == ["one", "few", "many", "other"]
    assert outer.branches[0].text == ("{n, plural, one {HER # FILE-ONE} few {HER # FILE-FEW} "
                                      "many {HER # FILE-MANY} other {HER # FILE-OTHER}}")
    # "one" (1, 21, 31 ...) takes the English "other" for 21, not "their file"
    assert outer.branches[1].text.startswith("{n, plural, one {THEIR # FILE-ONE} few")
    assert check_preservation(nested, out, "plain").ok
    # a plural nested in a branch of a plural: both get the target's categories
    folders = "{d, plural, one {# folder} other {# folders}}"
    inner = f"{{n, plural, one {{# file in {folders}}} other {{# files in {folders}}}}}"
    out = translate_document(inner, "plain", rewrite, tgt_lang="pl").text
    message = split_message(out)
    assert message is not None and _selectors(out) == ["one", "few", "many", "other"]
    assert all(_selectors(b.text[b.text.index("{"):]) == ["one", "few", "many", "other"]
               for b in message.branches)
    assert check_preservation(inner, out, "plain").ok
    # a language babel does not know, or no target at all: the source's categories
    for lang in ("tlh", None):
        out = translate_document(MESSAGE, "plain", rewrite, tgt_lang=lang).text
        assert _selectors(out[out.index("{"):-1]) == ["=0", "one", "other"]


@pytest.mark.parametrize("message", [
    # "#" in a nested select, no "#" but a number format, the sample number (21) already there
    "{n, plural, one {{g, select, female {her # file} other {their # file}}} "
    "other {{g, select, female {her # files} other {their # files}}}}",
    "{n, plural, one {{n, number} file} other {{n, number} files}}",
    "{n, plural, one {# file of 21} other {# files of 21}}",
])
def test_a_branch_that_cannot_be_translated_for_its_number_keeps_its_own_categorys_text(
    message: str,
) -> None:
    # Ukrainian "one" (1, 21, 31 ...) is translated for 21 from the English "other" where it can
    # hold the number; where it cannot, "files" without a number would become "файли", wrong for
    # 1 and 21: it keeps the English "one", the text Ukrainian took for 1 before ("файл")
    out = translate_document(message, "plain", ukrainian, src_lang="en", tgt_lang="uk").text
    parsed = split_message(out)
    assert parsed is not None and _selectors(out) == ["one", "few", "many", "other"]
    one, few = parsed.branches[0].text, parsed.branches[1].text
    assert "файл" in one and "файли" not in one
    assert "файли" in few  # for 2, with or without the number
    assert check_preservation(message, out, "plain").ok


@pytest.mark.parametrize(("message", "expected"), [
    ("{n, plural, other {# files}}",
     "{n, plural, one {# FILES} few {# FILES} many {# FILES} other {# FILES}}"),
    ("{n, plural,\n  other {# files}\n}",
     "{n, plural,\n  one {# FILES}\n  few {# FILES}\n  many {# FILES}\n  other {# FILES}\n}"),
    ("{n,plural,other{# files}}", "{n,plural,one{# FILES}few{# FILES}many{# FILES}other{# FILES}}"),
])
def test_new_branches_are_spaced_as_the_source_spaces_its_own(message: str, expected: str) -> None:
    # a message with a single category branch: the new ones after it are spaced as it is from
    # the head, not glued to the closing brace before them ("}few {")
    out = translate_document(json.dumps({"a": message}), "json", spelled, tgt_lang="uk").text
    assert json.loads(out)["a"] == expected


def test_a_quoted_hash_is_text_not_the_number(recording) -> None:
    # ICU's '#' is a literal "#" ("issue #1"), not the number: no sample is written in its place,
    # and a branch without a "#" of its own keeps its category's text ("file" for 1 and 21)
    spy, calls = recording(ukrainian)
    message = "{n, plural, one {file '#'1 deleted} other {files '#'1 deleted}}"
    out = translate_document(message, "plain", spy, src_lang="en", tgt_lang="uk").text
    assert out == ("{n, plural, one {файл '#'1 видалено} few {файли '#'1 видалено} "
                   "many {файли '#'1 видалено} other {файли '#'1 видалено}}")
    assert not any("'2" in call or "'5" in call for call in calls)
    # beside a "#" that is the number, the quoted one stays text and the number is written
    message = "{n, plural, one {# file '#'1} other {# files '#'1}}"
    out = translate_document(message, "plain", spy, src_lang="en", tgt_lang="uk").text
    assert out == ("{n, plural, one {# файл '#'1} few {# файли '#'1} many {# файлів '#'1} "
                   "other {# файлу '#'1}}")
    assert "5 files ⟦1⟧1" in calls  # the quoted text, apostrophes and all, is one span
    assert check_preservation(message, out, "plain").ok


def test_quoted_braces_stay_text_in_the_target_languages_categories(recording) -> None:
    # '{' and '}' are braces in the text (ICU quoting): the message keeps its syntax, each new
    # branch its quotes, and the number is written between them
    spy, calls = recording(ukrainian)
    source = json.dumps({"a": "{n, plural, one {'{'# file'}'} other {'{'# files'}'}}"})
    result = translate_document(source, "json", spy, src_lang="en", tgt_lang="uk")
    assert json.loads(result.text)["a"] == (
        "{n, plural, one {'{'# файл'}'} few {'{'# файли'}'} many {'{'# файлів'}'} "
        "other {'{'# файлу'}'}}")
    assert "⟦1⟧5 files⟦2⟧" in calls
    assert result.summary.plural_samples == 4 and result.summary.plural_fallbacks == 0
    assert check_preservation(source, result.text, "json").ok


@pytest.mark.parametrize(("text", "hashes"), [
    ("# file", [0]), ("'#'1 and #", [9]), ("'{#}' #", [6]), ("it''s #", [6]),
    ("'#", []), ("{n, select, a {#} other {#}}", [15, 25]), ("a ''#'' b", [4]),
])
def test_hashes_in_apostrophe_quoted_text_are_not_the_number(text: str, hashes: list[int]) -> None:
    assert unquoted_hashes(text) == hashes


@pytest.mark.parametrize(("message", "texts"), [
    ("{n, plural, one {'{' #} other {#}}", ["'{' #", "#"]),
    ("{n, plural, one {# '}'} other {'''}'''}}", ["# '}'", "'''}'''"]),
    ("{n, plural, one {it''s {x}} other {'#'}}", ["it''s {x}", "'#'"]),
    ("{g, select, a {it'#{x}' ok} other {y}}", ["it'#{x}' ok", "y"]),  # "'#": a plural's only
    ("{n, plural, one {{d, date, h 'o''clock {'} x} other {y}}", ["{d, date, h 'o''clock {'} x", "y"]),
    ("{n, plural, one {'{x} other {#}}", None),  # the quote runs to the end: no closing brace
])
def test_branches_end_at_a_brace_outside_apostrophe_quoting(message: str,
                                                            texts: list[str] | None) -> None:
    parsed = split_message(message)
    assert (parsed and [b.text for b in parsed.branches]) == texts


def test_a_plural_branch_with_no_source_branch_like_it_fails_the_check() -> None:
    out = translate_document(MESSAGE, "plain", inflecting("uk"), tgt_lang="uk").text
    broken = out.replace("few {# FILE-FEW}", "few {FILE-FEW}")
    report = check_preservation(MESSAGE, broken, "plain")
    assert not report.ok and "no branch of the source" in str(report)


def test_sample_numbers_are_small_and_prefer_numbers_above_one() -> None:
    assert cldr_samples("uk") == {"one": 21, "few": 2, "many": 5, "other": Decimal("1.5")}
    assert cldr_samples("en") == {"one": 1, "other": 2}
    assert cldr_samples("fr") == {"one": 1, "many": 1_000_000, "other": 2}
    assert cldr_samples("en", ordinal=True) == {"one": 21, "two": 2, "few": 3, "other": 4}
    assert cldr_samples("tlh") is None
    assert form_samples("nplurals=3; plural=({});".format(plural_forms("uk")[1])) == {0: 21, 1: 2, 2: 5}
    assert form_samples("nplurals=2; plural=(n > 1);") == {0: 1, 1: 2}
    assert plurals_for(None, "uk") == plurals_for("en", "uk")
    assert plurals_for("en", None) is None and plurals_for("en-US", "en_us") is None  # correction


@pytest.mark.parametrize(("placeholders", "brace_format", "number"), [
    (["%d"], False, 0), (["%ld"], False, 0), (["%1$d"], False, 0), (["%(count)d"], False, 0),
    (["%(count)s"], False, 0), (["%(counter)s"], False, 0), (["{count}"], False, 0),
    (["{n}"], False, 0), (["{{ num }}"], False, 0), (["%(name)s", "%(count)s"], False, 1),
    (["%s", "%d"], False, 1), (["{}"], True, 0), (["{0}"], True, 0),
    (["%s"], False, None), (["%(name)s"], False, None), (["{}"], False, None),
    (["{0}", "{1}"], True, None), (["%d", "%d"], False, None), (["%f"], False, None),
    (["%{count}"], False, None), ([], False, None), (["%'d"], False, 0), (["%n"], False, 0),
    (["%Ln"], False, 0), (["$count"], False, 0), (["$name", "$n"], False, 1), (["%1"], False, None),
    (["{{- count}}"], False, 0), (["{{- n -}}"], False, 0),
])
def test_the_number_placeholder_is_chosen_conservatively(placeholders: list[str], brace_format: bool,
                                                         number: int | None) -> None:
    assert number_placeholder(placeholders, brace_format) == number


PO_HEADER = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
CATALOG = (PO_HEADER + '#, python-format\nmsgid "%(count)s file deleted"\n'
           'msgid_plural "%(count)s files deleted"\nmsgstr[0] ""\nmsgstr[1] ""\n\n'
           '#, c-format\nmsgid "%d of %d file"\nmsgid_plural "%d of %d files"\nmsgstr[0] ""\n'
           'msgstr[1] ""\n')


def test_po_plural_forms_are_translated_for_their_numbers(recording, tmp_path: Path) -> None:
    spy, calls = recording(ukrainian)
    out = translate_document(CATALOG, "po", spy, tgt_lang="uk", fuzzy=False).text
    deleted, of = polib.pofile(out)
    assert deleted.msgstr_plural == {0: "%(count)s файл видалено", 1: "%(count)s файли видалено",
                                     2: "%(count)s файлів видалено"}
    assert {"21 files deleted", "2 files deleted", "5 files deleted"} <= set(calls)
    # the form for 1, 21, 31 ... was translated for 21: no review forced
    assert "fuzzy" not in deleted.flags
    # two number placeholders: as before, every form from the plural, flagged for review
    assert of.msgstr_plural == {0: "%d of %d файли", 1: "%d of %d файли", 2: "%d of %d файли"}
    assert "fuzzy" in of.flags
    assert check_preservation(CATALOG, out, "po").ok
    po = tmp_path / "uk.po"
    po.write_text(out, encoding="utf-8")
    if MSGFMT is not None:  # compiled, as Python's gettext reads it at run time
        subprocess.run([MSGFMT, "--check", "-o", str(tmp_path / "uk.mo"), str(po)], check=True)
        with open(tmp_path / "uk.mo", "rb") as mo:
            catalog = gettext.GNUTranslations(mo)
        assert [catalog.ngettext(deleted.msgid, deleted.msgid_plural, n) % {"count": n}
                for n in (1, 2, 5, 21, 22, 25)] == [
            "1 файл видалено", "2 файли видалено", "5 файлів видалено", "21 файл видалено",
            "22 файли видалено", "25 файлів видалено"]


def test_qt_and_shell_counts_are_the_number_of_a_po_plural() -> None:
    catalog = (PO_HEADER + '#, qt-plural-format\nmsgid "%n file deleted"\n'
               'msgid_plural "%n files deleted"\nmsgstr[0] ""\nmsgstr[1] ""\n\n'
               '#, sh-format\nmsgid "$count file deleted"\nmsgid_plural "$count files deleted"\n'
               'msgstr[0] ""\nmsgstr[1] ""\n')
    out = translate_document(catalog, "po", ukrainian, tgt_lang="uk", fuzzy=False).text
    for entry, count in zip(polib.pofile(out), ("%n", "$count"), strict=True):
        assert entry.msgstr_plural == {0: f"{count} файл видалено", 1: f"{count} файли видалено",
                                       2: f"{count} файлів видалено"}
    assert check_preservation(catalog, out, "po").ok


def test_po_forms_fall_back_when_the_number_does_not_come_back(recording) -> None:
    spy, calls = recording(spelled)
    result = translate_document(CATALOG, "po", spy, tgt_lang="uk")
    deleted = polib.pofile(result.text)[0]
    assert set(deleted.msgstr_plural.values()) == {"%(count)s FILES DELETED"}
    assert "21 files deleted" in calls and "⟦1⟧ files deleted" in calls
    assert result.summary.plural_samples == 3 and result.summary.plural_fallbacks == 3
    # a singular form with the number (Czech 1) takes the msgid, for 1
    out = translate_document(CATALOG, "po", inflecting("cs"), tgt_lang="cs").text
    assert polib.pofile(out)[0].msgstr_plural == {
        0: "%(count)s FILE-ONE DELETED", 1: "%(count)s FILE-FEW DELETED",
        2: "%(count)s FILE-OTHER DELETED"}



def test_a_real_model_gets_the_target_categories_and_every_hash_back(tiny_model_dir: Path,
                                                                     recording) -> None:
    from polyseq.translator import Translator

    translator = Translator.load(tiny_model_dir)
    spy, calls = recording(translator.for_segments("en", "de"))
    ordinals = "{n, selectordinal, one {#st try} two {#nd try} few {#rd try} other {#th try}}"
    text = json.dumps({"a": ordinals, "b": MESSAGE})
    result = translate_document(text, "json", spy, src_lang="en", tgt_lang="de")
    out = json.loads(result.text)
    ordinal = split_message(out["a"])
    assert ordinal is not None and [b.selector for b in ordinal.branches] == ["other"]
    assert ordinal.branches[0].text.count("#") == 1  # the number's, or the fallback's
    # translated for 2 from "two", else as before, from the "other" German always took
    assert "2nd try" in calls and "⟦1⟧th try" in calls
    assert _selectors(out["b"][out["b"].index("{"):out["b"].rindex("}") + 1]) == ["=0", "one", "other"]
    assert result.summary.plural_samples == 1
    assert check_preservation(text, result.text, "json").ok
