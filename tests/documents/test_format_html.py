"""HTML: text and alt/title/placeholder translated; tags, other attributes, code, scripts and
styles kept; a sentence with inline tags is translated whole."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyseq.documents import check_preservation, translate_document

WORDS = st.sampled_from(["Hello", "world", "and", "ünïcode", "Straße", "%(name)s", "{0}",
                         "&amp;", "&lt;tag&gt;", "&nbsp;", "https://example.org/x?a=1&amp;b=2",
                         "mail@example.com", "the", "end.",
                         # line breaks to str.splitlines, not to the parser's line count
                         "one\rtwo", "v\x0btab", "form\x0cfeed", "fs\x1cgs\x1drs\x1e", "nel\x85",
                         "line\u2028sep", "para\u2029sep"])
TEXT = st.lists(WORDS, min_size=1, max_size=6).map(" ".join)


@st.composite
def inline(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["text", "b", "a", "code", "img", "br", "abbr", "comment"]))
        text = draw(TEXT)
        parts.append({
            "text": text,
            "b": f"<b>{text}</b>",
            "a": f'<a href="/{draw(st.integers(0, 9))}" title="{text}">{text}</a>',
            "code": f"<code>{text} x &lt; 1</code>",
            "img": f'<img src="p.png" alt="{text}">',
            "br": "<br>",
            "abbr": f"<abbr title='{text}'>{text}</abbr>",
            "comment": "<!-- a comment -->",
        }[kind])
    return " ".join(parts)


@st.composite
def pages(draw: st.DrawFn) -> str:
    blocks = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["p", "li", "h2", "pre", "script", "style", "input", "td"]))
        body = draw(inline())
        blocks.append({
            "p": f"<p class=\"c\">{body}</p>",
            "li": f"<ul>\n  <li>{body}</li>\n</ul>",
            "h2": f"<h2 id=\"x\">{body}</h2>",
            "pre": f"<pre>  {body}\n  keep   spacing</pre>",
            "script": f"<script>var s = \"{body}\";</script>",
            "style": "<style>p > b { color: red }</style>",
            "input": '<input type="text" placeholder="Your name" value="Keep me">',
            "td": f"<table><tr><td>{body}</td></tr></table>",
        }[kind])
    head = "<!DOCTYPE html>\n<html><head><title>My page</title></head><body>\n"
    return head + "\n".join(blocks) + "\n</body></html>\n"


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(pages())
def test_identity_gives_the_page_back_byte_for_byte(identity, text: str) -> None:
    assert translate_document(text, "html", identity).text == text


@SETTINGS
@given(st.text(st.characters(exclude_characters="\x00"), max_size=200))
def test_identity_on_arbitrary_text(identity, text: str) -> None:
    assert translate_document(text, "html", identity).text == text


def _kept_regions(text: str) -> list[str]:
    return re.findall(r"<(?:pre|script|style|code)\b.*?</(?:pre|script|style|code)>", text,
                      re.S)


@SETTINGS
@given(pages())
def test_rewriting_keeps_tags_code_and_spans(rewrite, text: str) -> None:
    out = translate_document(text, "html", rewrite).text
    assert check_preservation(text, out, "html").ok
    assert _kept_regions(out) == _kept_regions(text)
    assert re.findall(r'(?:href|src|class|id|type|value)="[^"]*"', out) == re.findall(
        r'(?:href|src|class|id|type|value)="[^"]*"', text)


def test_a_sentence_with_inline_tags_is_translated_whole(rewrite, recording) -> None:
    text = '<p>Click <a href="/home" title="Go home">here</a> to <b>start</b> now.</p>'
    spy, calls = recording(rewrite)
    out = translate_document(text, "html", spy).text
    assert sorted(calls) == sorted(["Click ⟦1⟧here⟦2⟧ to ⟦3⟧start⟦4⟧ now.", "Go home"])
    go, home = rewrite(["Go", "home"])
    assert f'<a href="/home" title="{go} {home}">' in out
    assert out.startswith("<p>") and out.endswith("</p>")


def test_entities_are_decoded_for_the_model_and_encoded_back(rewrite) -> None:
    text = "<p>Fish &amp; chips &lt;3</p>"
    seen: list[str] = []
    out = translate_document(text, "html", lambda t: seen.extend(t) or rewrite(t)).text
    assert seen == ["Fish & chips <3"]
    fish, chips = rewrite(["Fish", "chips"])
    assert out == f"<p>{fish} &amp; {chips} &lt;3</p>"


def test_alt_title_placeholder_only(rewrite) -> None:
    text = '<img alt="A cat" title="Cute" data-x="Keep this" src="cat.png"><input placeholder=Name>'
    out = translate_document(text, "html", rewrite).text
    a, cat, cute, name = rewrite(["A", "cat", "Cute", "Name"])
    assert out == (f'<img alt="{a} {cat}" title="{cute}" data-x="Keep this" src="cat.png">'
                   f'<input placeholder="{name}">')


@pytest.mark.parametrize("separator", ["\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85",
                                       "\u2028", "\u2029"])
def test_tags_after_a_line_separator_other_than_newline_stay_in_place(identity, rewrite,
                                                                      separator: str) -> None:
    text = f"<p>Hello{separator}world here</p>\n<p>Second <b>para</b> text</p>\n"
    assert translate_document(text, "html", identity).text == text
    out = translate_document(text, "html", rewrite).text
    hello, second, para, end = rewrite([f"Hello{separator}world here", "Second", "para", "text"])
    assert out == f"<p>{hello}</p>\n<p>{second} <b>{para}</b> {end}</p>\n"


def test_a_translated_unquoted_attribute_is_quoted_and_passes_the_check(identity,
                                                                         rewrite) -> None:
    text = "<p>A <img alt=Cat src=x.png> and <abbr title='Fish &amp; chips'>FC</abbr>.</p>"
    assert translate_document(text, "html", identity).text == text
    out = translate_document(text, "html", rewrite).text
    a, cat, and_, fish, chips, fc = rewrite(["A", "Cat", "and", "Fish", "chips", "FC"])
    assert out == (f'<p>{a} <img alt="{cat}" src=x.png> {and_} '
                   f"<abbr title='{fish} &amp; {chips}'>{fc}</abbr>.</p>")
    assert check_preservation(text, out, "html").ok
