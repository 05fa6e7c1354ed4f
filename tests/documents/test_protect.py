"""Inline protection: which spans are found, sentinels out and back, and the repair of
sentences whose sentinels a translator dropped, doubled or garbled."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyseq.documents import check_preservation, translate_document
from polyseq.documents.patterns import ALL_PATTERNS, PROSE_PATTERNS, find_spans
from polyseq.documents.protect import (
    Segment,
    has_words,
    mask,
    nested_segments,
    restore_check,
    sentinel,
    sentinel_ids,
    split_sentinels,
)
from polyseq.documents.segment import split_sentences

PLACEHOLDERS = ["%(name)s", "%s", "%d", "%.2f", "{0}", "{name}", "{user.name!r}", "{{ var }}",
                "{% trans %}", "${var}", "%1$s", "%2$d", "%1$.2f", "%zu", "%lld", "%hhx", "%@",
                "%1$@", "{count, number}", "{d, date, short}", "${ x }", "{{{raw}}}",
                "{0,choice,0#no files|1#one file|1<{0} files}", "%'d", "%'.2f", "%-'10d", "%1$'d"]
ICU_MESSAGES = ["{count, plural, one {# file} other {# files}}",
                "{g, select, female {{n, plural, one {her #} other {her # files}}} other {them}}",
                "{n, selectordinal, offset:1 one {#st} two {#nd} few {#rd} other {#th}}",
                # ICU's apostrophe quoting: '{' is a brace in the text, not syntax
                "{n, plural, one {'{' # file} other {# files}}",
                "{n, plural, one {# file '}'} other {# files '{name}'}}",
                "{g, select, female {she''s '{'here} other {{n, plural, one {# '}'} other {#}}}}"]
OTHERS = {
    "inline_code": "`x = 1`",
    "url": "https://example.com/a/b?c=1&d=2#top",
    "email": "someone@example.org",
    "html_tag": '<a href="/x">',
    "entity": "&amp;",
    "include": "{* ../docs_src/app.py hl[3] *}",
    "anchor": "{ #the-anchor }",
}


@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
def test_placeholders_are_found_whole(placeholder: str) -> None:
    text = f"Hello {placeholder} and goodbye."
    spans = find_spans(text, frozenset({"placeholder"}))
    assert [(text[s:e], kind) for s, e, kind in spans] == [(placeholder, "placeholder")]


@pytest.mark.parametrize("message", ICU_MESSAGES)
def test_icu_plural_and_select_messages_are_found_whole(message: str) -> None:
    text = f"Hello {message} and goodbye."
    spans = find_spans(text, frozenset({"icu_message", "placeholder"}))
    assert [(text[s:e], kind) for s, e, kind in spans] == [(message, "icu_message")]


@pytest.mark.parametrize(("kind", "span"), sorted(OTHERS.items()))
def test_each_kind_is_found_whole(kind: str, span: str) -> None:
    masked = mask(Segment(text=f"See {span}, then go on.", raw=""))
    assert [(s.kind, s.text) for s in masked.spans] == [(kind, span)]
    assert masked.text == f"See {sentinel(1)}, then go on."


@pytest.mark.parametrize("prose", ["It is 50% of the price.", "Use 100 % cotton.",
                                   "Email me at home.", "A {} B", "x < y > z",
                                   "Eine 50%ige Lösung.", "Pick {red, green} or blue."])
def test_prose_that_only_looks_special_is_left_alone(prose: str) -> None:
    kinds = frozenset({"placeholder", "url", "email", "html_tag"})
    assert [prose[s:e] for s, e, _ in find_spans(prose, kinds)] in ([], ["{}"])


def test_url_excludes_trailing_punctuation_and_keeps_balanced_parentheses() -> None:
    text = "See https://en.wikipedia.org/wiki/Foo_(bar). Or (https://x.org/y)."
    found = [text[s:e] for s, e, _ in find_spans(text, frozenset({"url"}))]
    assert found == ["https://en.wikipedia.org/wiki/Foo_(bar)", "https://x.org/y"]


def test_sentinel_brackets_already_in_the_text_are_protected() -> None:
    segment = Segment(text="Literal ⟦1⟧ here", raw="")
    masked = mask(segment)
    assert [s.text for s in masked.spans] == ["⟦", "⟧"]
    assert masked.text.count("⟦") == 2


def test_restore_check_accepts_reordering_and_rejects_loss_doubling_garbling() -> None:
    source = f"a {sentinel(1)} b {sentinel(2)} c"
    assert restore_check(f"x {sentinel(2)} y {sentinel(1)}", source) == ["x ", 2, " y ", 1]
    assert restore_check(f"x ⟦ 1 ⟧ y {sentinel(2)}", source) == ["x ", 1, " y ", 2]
    assert restore_check(f"x {sentinel(1)} y", source) is None
    assert restore_check(f"{sentinel(1)}{sentinel(1)}{sentinel(2)}", source) is None
    assert restore_check(f"{sentinel(1)} ⟦2 z", source) is None
    assert restore_check(f"{sentinel(1)}{sentinel(2)}{sentinel(3)}", source) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=8), st.integers(1, 9)), max_size=8))
def test_split_sentinels_inverts_joining(parts: list[str | int]) -> None:
    text = "".join(sentinel(p) if isinstance(p, int) else p for p in parts)
    rebuilt = "".join(sentinel(p) if isinstance(p, int) else p for p in split_sentinels(text))
    assert rebuilt == text


SENTENCES = st.lists(
    st.one_of(st.sampled_from(["the", "cat", "sat", "on", "a", "mat.", "Then", "it", "left!"]),
              st.sampled_from(PLACEHOLDERS + ICU_MESSAGES + list(OTHERS.values()))),
    min_size=1, max_size=25,
).map(" ".join)


def _sentences_with_spans(text: str) -> int:
    """Sentences that hold both prose and a sentinel, an ICU message's branches included: those
    a faulty translator breaks."""
    return sum(_broken_sentences(Segment(text=paragraph, raw="")) for paragraph in text.split("\n\n"))


def _broken_sentences(segment: Segment) -> int:
    masked = mask(segment)
    sentences = [masked.text[start:end] for start, end in split_sentences(masked.text, "en", 400)]
    return (sum(bool(has_words(sentence) and sentinel_ids(sentence)) for sentence in sentences)
            + sum(_broken_sentences(nested) for nested in nested_segments(masked.spans)))


@pytest.mark.parametrize("fault", ["drop", "double", "garble"])
@settings(max_examples=40, deadline=None)
@given(text=st.lists(SENTENCES, min_size=1, max_size=4).map("\n\n".join))
def test_repair_restores_every_span_exactly_once(make_faulty, fault: str, text: str) -> None:
    result = translate_document(text, "plain", make_faulty(fault))
    report = check_preservation(text, result.text, "plain")
    assert report.ok, str(report)
    assert result.summary.repairs == _sentences_with_spans(text)


def test_repair_translates_the_prose_around_the_spans(make_faulty, rewrite) -> None:
    text = "Open %(file)s in `vim` now."
    result = translate_document(text, "plain", make_faulty("drop"))
    open_, in_, now = rewrite(["Open", "in", "now."])
    assert result.text == f"{open_} %(file)s {in_} `vim` {now}"
    assert result.summary.repairs == 1
    assert result.summary.repaired_by_kind == {"inline_code": 1, "placeholder": 1}


def _up(texts: list[str]) -> list[str]:
    return [t.upper() for t in texts]


def test_a_bare_printf_directive_glued_to_a_word_is_protected_in_catalogs_only() -> None:
    text = "Eine 50%ige Lösung, %dpx breit, :name sagt %s個."
    assert [(text[s:e], k) for s, e, k in find_spans(text, PROSE_PATTERNS)] == [
        ("%s", "placeholder")]  # a letter outside ASCII ends no German word: "%s個" is one
    assert [(text[s:e], k) for s, e, k in find_spans(text, ALL_PATTERNS)] == [
        ("%i", "printf_glued"), ("%d", "printf_glued"), (":name", "laravel"), ("%s", "placeholder")]
    assert (translate_document(text, "plain", _up).text
            == "EINE 50%IGE LÖSUNG, %DPX BREIT, :NAME SAGT %s個.")


PO_HEADER = '''msgid ""
msgstr ""
"Language: de\\n"
"Content-Type: text/plain; charset=UTF-8\\n"

'''


def test_catalog_placeholders_survive_a_po_entry_and_its_flags() -> None:
    """In a c-format catalog every directive counts, "%ige" too (gettext's msgfmt --check
    reads it as %i); argument indexes and C length modifiers come back as they were."""
    text = PO_HEADER + '#, c-format\nmsgid "A 50%ige mix of %1$s and %zu, %lld"\nmsgstr ""\n'
    out = translate_document(text, "po", _up, tgt_lang="de").text
    assert out.endswith('#, fuzzy, c-format\nmsgid "A 50%ige mix of %1$s and %zu, %lld"\n'
                        'msgstr "A 50%iGE MIX OF %1$s AND %zu, %lld"\n')
    assert check_preservation(text, out, "po").ok


def test_icu_messages_keep_their_syntax_and_translate_their_branches(rewrite, recording) -> None:
    """A plural or select message's branches are translated one by one, each its own sentence
    (moved between branches, a sentinel would break the syntax); its argument, type, selectors,
    braces and a plural's "#" come back unchanged. A choice message or a malformed one stays whole."""
    text = ("You have {count, plural, =0 {no files} one {# file} other {# files}} since "
            "{day, date, short}, {{{raw}}} and ${ name }.")
    assert translate_document(text, "plain", _up).text == (
        "YOU HAVE {count, plural, =0 {NO FILES} one {# FILE} other {# FILES}} SINCE "
        "{day, date, short}, {{{raw}}} AND ${ name }.")
    nested = "{g, select, female {{n, plural, one {her # file} other {her # files}}} other {their {n} files}}"
    spy, calls = recording(rewrite)
    out = translate_document(nested, "plain", spy).text
    her, file, files, their = rewrite(["her", "file", "files", "their"])
    assert out == (f"{{g, select, female {{{{n, plural, one {{{her} # {file}}} other {{{her} # {files}}}}}}} "
                   f"other {{{their} {{n}} {files}}}}}")
    assert sorted(calls) == ["her ⟦1⟧ file", "her ⟦1⟧ files", "their ⟦1⟧ files"]
    assert check_preservation(nested, out, "plain").ok
    broken = out.replace(f"{her} # {file}", f"{her} {file}")  # a translation that lost a "#"
    assert not check_preservation(nested, broken, "plain").ok
    for whole in ("{0,choice,0#no files|1#one file} left", "{count, plural, one} left"):
        assert translate_document(whole, "plain", _up).text == whole.replace("left", "LEFT")


@pytest.mark.parametrize(("message", "expected"), [
    ("{n, plural, one {'{' # file} other {# files}}", "{n, plural, one {'{' # FILE} other {# FILES}}"),
    ("{n, plural, one {# file '}'} other {# files}}", "{n, plural, one {# FILE '}'} other {# FILES}}"),
    ("{g, select, female {'{name}' is hers} other {'{'theirs}} now",
     "{g, select, female {'{name}' IS HERS} other {'{'THEIRS}} NOW"),
    ("{n, plural, one {{g, select, a {x '{' y} other {z}} #} other {#}}",
     "{n, plural, one {{g, select, a {X '{' Y} other {Z}} #} other {#}}"),
])
def test_braces_quoted_in_an_icu_message_are_text_not_syntax(message: str, expected: str,
                                                             recording) -> None:
    """ICU reads an apostrophe before "{" or "}" (or "#" in a plural) as the start of literal text
    up to the next one: the message's syntax stays, and the quoted text is a span of its branch,
    so that a model can neither translate nor break it."""
    spy, calls = recording(_up)
    out = translate_document(message, "plain", spy).text
    assert out == expected
    assert all("'" not in call for call in calls)  # each quote went to the model as a sentinel
    assert check_preservation(message, out, "plain").ok
    # the syntax translated as prose (as it was, when a quoted brace broke the brace matching)
    assert not check_preservation(message, message.upper(), "plain").ok


def test_apostrophes_that_quote_nothing_are_prose_and_stay_as_written() -> None:
    # before a letter or a space an apostrophe is itself, "''" is one (quoted or not); outside an
    # ICU message, "'{name}'" is a placeholder in quotes
    text = ("Don't {n, plural, one {l'homme''s # file} other {the users' # files}} "
            "or '{name}' here")
    assert translate_document(text, "plain", _up).text == (
        "DON'T {n, plural, one {L'HOMME''S # FILE} other {THE USERS' # FILES}} "
        "OR '{name}' HERE")
    assert [(text[s:e], k) for s, e, k in find_spans(text, ALL_PATTERNS)] == [
        (text[6:text.index(" or")], "icu_message"), ("{name}", "placeholder")]


def test_an_apostrophe_the_model_writes_before_syntax_is_doubled() -> None:
    """French elides "de" before a vowel: "d'{name}" would start quoted text that runs to the
    end of the message; "d''{name}" is an apostrophe and the argument. The same at a branch's
    end ("users'}") and before "#" or a quote."""
    def elide(texts: list[str]) -> list[str]:
        return [re.sub(r"\bof (?=⟦)", "d'", t) + ("'" if t.endswith("users") else "")
                for t in texts]

    message = "{n, plural, one {# file of {name} of '{'} other {# files of # of the users}}"
    out = translate_document(message, "plain", elide).text
    assert out == "{n, plural, one {# file d''{name} d'''{'} other {# files d''# of the users''}}"
    assert check_preservation(message, out, "plain").ok


@pytest.mark.parametrize(("placeholder", "kind"), [
    ("%1", "qt_arg"), ("%99", "qt_arg"), ("%L1", "qt_arg"), ("%n", "qt_arg"), ("%Ln", "qt_arg"),
    ("$count", "dollar_variable"), ("$user_name", "dollar_variable"), ("$größe", "dollar_variable"),
])
def test_qt_arguments_and_dollar_variables_are_found_whole_in_catalogs_only(placeholder: str,
                                                                            kind: str) -> None:
    text = f"Copied {placeholder} of them."
    assert [(text[s:e], k) for s, e, k in find_spans(text, ALL_PATTERNS)] == [(placeholder, kind)]
    assert find_spans(text, PROSE_PATTERNS) == []  # "%50" is how Turkish prose writes 50%


@pytest.mark.parametrize("prose", [
    "50% off", "Use 100 % cotton.", "%", "Up 5%.", "The top 1%'s income.", "From 50%-60% now.",
    "A 20%+ rise.", "Save $5, $ 10 or US$20 on \\$HOME.", "I am %100 sure.", "Pay $5.99 today",
])
def test_percent_and_dollar_signs_of_prose_are_prose_in_catalogs_too(prose: str) -> None:
    assert [prose[s:e] for s, e, _ in find_spans(prose, ALL_PATTERNS)] == []


def test_grouped_printf_qt_and_dollar_placeholders_come_back() -> None:
    text = json.dumps({"a": "Copied %1 of %2 files (%L3 MB), %n left", "b": "%'d files, %'.2f MB",
                       "c": "Hello $name, 50% off and $5 for 100 % of %1px"})
    out = translate_document(text, "json", _up).text
    assert json.loads(out) == {"a": "COPIED %1 OF %2 FILES (%L3 MB), %n LEFT",
                               "b": "%'d FILES, %'.2f MB",
                               "c": "HELLO $name, 50% OFF AND $5 FOR 100 % OF %1PX"}
    assert check_preservation(text, out, "json").ok
    assert not check_preservation(text, out.replace("%2 FILES", "2% FILES"), "json").ok
    # in prose formats only the printf directive is a placeholder: "%1" and "$name" are text
    plain = "%'d files for $name on page %1."
    assert translate_document(plain, "plain", _up).text == "%'d FILES FOR $NAME ON PAGE %1."
