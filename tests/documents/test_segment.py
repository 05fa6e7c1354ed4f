"""Sentence splitting and line filling: nothing lost, nothing moved, every piece fits."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from polyseq.documents.segment import fill_lines, rewrap, split_sentences, words_of

WORDS = st.sampled_from(["Dr.", "Smith", "went", "home", "e.g.", "3.14", "is", "pi", "⟦1⟧",
                         "really", "fast", "ok", "a" * 30])
ENDS = st.sampled_from([". ", "! ", "? ", ".\n", ", ", " ", "  ", "; "])
TEXT = st.lists(st.tuples(WORDS, ENDS), max_size=40).map(
    lambda pairs: "".join(w + e for w, e in pairs))


def _check_cover(text: str, ranges: list[tuple[int, int]]) -> None:
    covered = set()
    last = 0
    for start, end in ranges:
        assert last <= start < end <= len(text)
        assert not text[start].isspace() and not text[end - 1].isspace()
        covered.update(range(start, end))
        last = end
    # every non-space character is in exactly one piece; only whitespace lies between pieces
    assert all(text[i].isspace() for i in range(len(text)) if i not in covered)


@settings(max_examples=80, deadline=None)
@given(TEXT, st.sampled_from(["en", "de", "fr", "pt", "xx"]))
def test_sentences_cover_the_text_in_order(text: str, lang: str) -> None:
    _check_cover(text, split_sentences(text, lang))


@settings(max_examples=80, deadline=None)
@given(TEXT, st.integers(min_value=10, max_value=80))
def test_pieces_fit_unless_a_single_word_is_longer(text: str, limit: int) -> None:
    ranges = split_sentences(text, "en", max_chars=limit)
    _check_cover(text, ranges)
    for start, end in ranges:
        assert end - start <= limit or not re.search(r"\s", text[start:end])


def test_sentences_are_split_at_sentence_ends_not_abbreviations() -> None:
    text = "Dr. Smith arrived at 3.30 p.m. today.  He left, e.g. by bus! Did he?"
    pieces = [text[s:e] for s, e in split_sentences(text, "en")]
    assert pieces == ["Dr. Smith arrived at 3.30 p.m. today.", "He left, e.g. by bus!",
                      "Did he?"]


def test_long_sentences_are_cut_at_clause_breaks_first() -> None:
    text = "one two three, four five six seven eight nine"
    pieces = [text[s:e] for s, e in split_sentences(text, "en", max_chars=20)]
    assert pieces[0] == "one two three,"
    assert all(len(p) <= 20 for p in pieces)
    assert " ".join(pieces) == text


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.text(alphabet="ab ", max_size=6), st.just(False)),
                          st.tuples(st.sampled_from(["`a b`", "X", "<b>", "{0}"]), st.just(True))),
                max_size=12),
       st.integers(min_value=1, max_value=5))
def test_rewrap_keeps_words_protected_parts_and_line_count(parts, count: int) -> None:
    out = rewrap(parts, count, "\n", "  ")
    lines = out.split("\n  ")
    flat = " ".join(lines)
    for text, kept in parts:
        if kept:
            assert text in flat
    assert re.sub(r"\s", "", out) == re.sub(r"\s", "", "".join(t for t, _ in parts))
    words = words_of(parts)
    assert len(lines) == min(count, max(len(words), 1))
    assert flat == " ".join(words)


def test_fill_lines_keeps_marked_words_off_line_starts() -> None:
    lines = fill_lines(["aaa", "bbb", "-", "ccc"], 7, keep_together=lambda w: w == "-")
    assert lines == ["aaa bbb -", "ccc"]
