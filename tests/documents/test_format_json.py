"""JSON: string values translated, keys, other values, layout and structure kept."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyseq.documents import check_preservation, translate_document
from polyseq.documents.formats.jsonfmt import key_paths, load, path_matches, walk
from polyseq.documents.protect import DocumentError, Segment, has_words, mask

PROSE = st.lists(
    st.sampled_from(["Hello", "world", "%(name)s", "{0}", "{{ user }}", "<b>", "</b>", "and",
                     "https://example.com/x", "ünïcödé", 'say "hi"', "back\\slash", "tab\there",
                     "line\nbreak", "日本", "😀"]),
    min_size=1, max_size=6,
).map(" ".join)
STRINGS = st.one_of(PROSE, st.text(max_size=12))
LEAVES = st.one_of(st.none(), st.booleans(), st.integers(), STRINGS,
                   st.floats(allow_nan=False, allow_infinity=False))
KEYS = st.one_of(st.sampled_from(["title", "label", "id", "items", "Hello"]), st.text(max_size=5))
TREES = st.recursive(LEAVES, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=4)), max_leaves=20)


@st.composite
def json_texts(draw: st.DrawFn) -> str:
    tree = draw(TREES)
    indent = draw(st.sampled_from([None, 2, 4, "\t"]))
    return json.dumps(tree, indent=indent, ensure_ascii=draw(st.booleans()))


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(json_texts())
def test_identity_gives_the_file_back_byte_for_byte(identity, text: str) -> None:
    assert translate_document(text, "json", identity).text == text


@SETTINGS
@given(json_texts())
def test_rewriting_keeps_keys_structure_and_protected_spans(rewrite, text: str) -> None:
    out = translate_document(text, "json", rewrite).text
    before, after = load(text), load(out)
    assert list(key_paths(after)) == list(key_paths(before))
    pairs = list(zip(walk(before), walk(after), strict=True))
    for (path, old), (new_path, new) in pairs:
        assert new_path == path
        if isinstance(old, str):
            # prose changes, unless it is all "q", which ``rewrite`` maps to itself
            masked = mask(Segment(text=old, raw=old)).text
            assert (new != old) is (has_words(masked) and rewrite([masked]) != [masked])
        else:
            assert new == old and type(new) is type(old)
    assert check_preservation(text, out, "json").ok


def test_paths_limit_what_is_translated(rewrite) -> None:
    text = '{"title": "Hello", "items": [{"label": "Open", "id": "x-1"}], "meta": {"title": "K"}}'
    out = json.loads(translate_document(text, "json", rewrite, json_paths=["items.*.label",
                                                                           "$.title"]).text)
    assert out == {"title": rewrite(["Hello"])[0], "items": [{"label": rewrite(["Open"])[0],
                                                             "id": "x-1"}],
                   "meta": {"title": "K"}}


@pytest.mark.parametrize(("path", "pattern", "matches"), [
    (("a", 0, "b"), "a.*.b", True), (("a", 0, "b"), "a[0].b", True), (("a", 0, "b"), "a.b", False),
    (("a", 0, "b"), "**.b", True), (("b",), "**.b", True), (("a", "b", "c"), "a.**", True),
    (("a",), "$.a", True), (("a", "x"), "a", False),
])
def test_path_patterns(path, pattern: str, matches: bool) -> None:
    assert path_matches(path, pattern) is matches


def test_escapes_and_unicode_are_written_back_validly(rewrite) -> None:
    text = '{"k": "caf\\u00e9 \\"quoted\\" \\\\ back\\nslash"}'
    out = translate_document(text, "json", rewrite).text
    value = json.loads(out)["k"]
    assert value == rewrite(['café "quoted" \\ back\nslash'])[0]


@pytest.mark.parametrize(("text", "place"), [
    ('{"a": 1,\n "b": }', "line 2, column 7"),
    ('{"a": "unterminated}', "line 1, column 7"),
    ("[1, 2] extra", "line 1, column 8"),
    ("", "line 1, column 1"),
])
def test_malformed_json_names_file_and_position(identity, text: str, place: str) -> None:
    with pytest.raises(DocumentError) as error:
        translate_document(text, "json", identity, source="messages.json")
    assert str(error.value).startswith(f"messages.json, {place}: not valid JSON")
    assert "try again" in str(error.value)


def test_duplicate_keys_and_layout_survive(rewrite) -> None:
    text = '{\n  "a": "One",\n  "a": "Two",   "n": 1.50\n}\n'
    out = translate_document(text, "json", rewrite).text
    one, two = rewrite(["One", "Two"])
    assert out == f'{{\n  "a": "{one}",\n  "a": "{two}",   "n": 1.50\n}}\n'


def test_printf_icu_and_laravel_placeholders_are_kept(rewrite) -> None:
    text = json.dumps({"a": "%1$s has %2$d items", "b": "Size %zu of %lld, by %@",
                       "c": "{count, plural, one {# file} other {# files}} left",
                       "d": "Hello :name, since {day, date, short}"})
    out = json.loads(translate_document(text, "json", rewrite).text)
    has, items, size, of, by, left, hello, since, file, files = rewrite(
        ["has", "items", "Size", "of", "by", "left", "Hello", "since", "file", "files"])
    assert out == {"a": f"%1$s {has} %2$d {items}", "b": f"{size} %zu {of} %lld, {by} %@",
                   "c": f"{{count, plural, one {{# {file}}} other {{# {files}}}}} {left}",
                   "d": f"{hello} :name, {since} {{day, date, short}}"}
    # a name in any script is a name: ":¹" rewritten to ":q" would otherwise be a new placeholder
    text = json.dumps({"e": ":über and :¹"})
    out = translate_document(text, "json", rewrite).text
    assert json.loads(out) == {"e": f":über {rewrite(['and'])[0]} :¹"}
    assert check_preservation(text, out, "json").ok


def test_a_lone_surrogate_is_kept_from_the_model_and_written_back_escaped(rewrite,
                                                                           recording) -> None:
    text = '{"a": "bad \\ud800 here"}'
    spy, calls = recording(rewrite)
    out = translate_document(text, "json", spy).text
    assert calls == ["bad ⟦1⟧ here"]
    bad, here = rewrite(["bad", "here"])
    assert out == f'{{"a": "{bad} \\ud800 {here}"}}'
    assert json.loads(out) == {"a": f"{bad} \ud800 {here}"}
    out.encode("utf-8")  # what writing the file does
    assert check_preservation(text, out, "json").ok


def test_braces_an_icu_message_quotes_are_text(rewrite) -> None:
    # ICU's '{' is a brace in the text: the message keeps its syntax and the quote is kept
    text = json.dumps({"a": "{count, plural, one {'{' # file} other {# files '}'}} left"})
    out = translate_document(text, "json", rewrite).text
    file, files, left = rewrite(["file", "files", "left"])
    assert json.loads(out)["a"] == (
        f"{{count, plural, one {{'{{' # {file}}} other {{# {files} '}}'}}}} {left}")
    assert check_preservation(text, out, "json").ok
