"""Inline protection: which spans are found, sentinels out and back, and the repair of
sentences whose sentinels a translator dropped, doubled or garbled."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyseq.documents import check_preservation, translate_document
from polyseq.documents.protect import (
    ALL_PATTERNS,
    PROSE_PATTERNS,
    Segment,
    find_spans,
    has_words,
    mask,
    restore_check,
    sentinel,
    sentinel_ids,
    split_sentinels,
)
from polyseq.documents.segment import split_sentences

PLACEHOLDERS = ["%(name)s", "%s", "%d", "%.2f", "{0}", "{name}", "{user.name!r}", "{{ var }}",
                "{% trans %}", "${var}", "%1$s", "%2$d", "%1$.2f", "%zu", "%lld", "%hhx", "%@",
                "%1$@", "{count, number}", "{d, date, short}", "${ x }", "{{{raw}}}",
                "{count, plural, one {# file} other {# files}}",
                "{g, select, female {{n, plural, one {her #} other {her # files}}} other {them}}"]
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
              st.sampled_from(PLACEHOLDERS + list(OTHERS.values()))),
    min_size=1, max_size=25,
).map(" ".join)


def _sentences_with_spans(text: str) -> int:
    """Sentences that hold both prose and a sentinel: those a faulty translator breaks."""
    count = 0
    for paragraph in text.split("\n\n"):
        masked = mask(Segment(text=paragraph, raw="")).text
        for start, end in split_sentences(masked, "en", 400):
            sentence = masked[start:end]
            count += bool(has_words(sentence) and sentinel_ids(sentence))
    return count


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


def test_icu_message_format_arguments_are_kept_whole() -> None:
    """A plural or select is protected as a whole, branch texts included: translated apart,
    a model that moves a sentinel between branches would break the message's syntax."""
    text = ("You have {count, plural, =0 {no files} one {# file} other {# files}} since "
            "{day, date, short}, {{{raw}}} and ${ name }.")
    out = translate_document(text, "plain", _up).text
    assert out == ("YOU HAVE {count, plural, =0 {no files} one {# file} other {# files}} SINCE "
                   "{day, date, short}, {{{raw}}} AND ${ name }.")
