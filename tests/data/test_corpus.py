"""Corpus readers (aligned files, TSV, JSONL), pair encoding and the length filter."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from polyseq.data.corpus import (
    CorpusError,
    Example,
    Pair,
    encode_pairs,
    filter_examples,
    load_corpus,
    read_lines,
)
from polyseq.text.tokenizer import Tokenizer, UnknownLanguageError

MULTI30K = Path(__file__).resolve().parents[3] / "shared" / "data" / "multi30k"
LANGS = ("en", "de", "fr")
ALL_DIRECTIONS = [(a, b) for a in LANGS for b in LANGS if a != b]


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return path


def aligned(tmp_path: Path, lines: dict[str, list[str]]) -> Path:
    for lang, items in lines.items():
        write(tmp_path / f"train.{lang}", "".join(f"{line}\n" for line in items))
    return tmp_path / "train"


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    texts = ["a dog runs", "ein Hund läuft", "un chien court", "two cats", "zwei Katzen"] * 20
    return Tokenizer.train(texts, tmp_path_factory.mktemp("tok"), vocab_size=300, languages=LANGS)


# ----------------------------------------------------------------------------- read_lines


def test_read_lines_strips_only_the_newline(tmp_path: Path) -> None:
    path = write(tmp_path / "x.txt", "\ufeffone \r\n two\r\nthree\rfour\u2028five\x1c\n\nlast")
    assert read_lines(path) == ["one ", " two", "three\rfour\u2028five\x1c", "", "last"]
    assert read_lines(write(tmp_path / "y.txt", "a\n")) == ["a"]
    assert read_lines(write(tmp_path / "z.txt", "\n")) == [""]


def test_read_lines_errors(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match=r"empty\.txt is empty"):
        read_lines(write(tmp_path / "empty.txt", ""))
    with pytest.raises(CorpusError, match=r"missing\.txt does not exist"):
        read_lines(tmp_path / "missing.txt")
    bad = write(tmp_path / "latin1.txt", b"fine\nalso fine\n" + "café\n".encode("latin-1"))
    with pytest.raises(CorpusError, match=r"latin1\.txt, line 3, column 4: not valid UTF-8 "
                                         r"\(byte 0xe9\).*iconv"):
        read_lines(bad)


# ----------------------------------------------------------------------------- aligned files


def test_aligned_files_give_every_direction(tmp_path: Path) -> None:
    prefix = aligned(tmp_path, {"en": ["a", "b"], "de": ["A", "B"], "fr": ["α", "β"]})
    corpus = load_corpus(prefix, LANGS, ALL_DIRECTIONS)
    assert len(corpus) == 12
    assert corpus[0] == Pair("a", "A", "en", "de")
    assert corpus[1] == Pair("b", "B", "en", "de")
    assert Pair("β", "B", "fr", "de") in corpus
    assert {(p.src_lang, p.tgt_lang) for p in corpus} == set(ALL_DIRECTIONS)
    assert corpus.stats.pairs == 12 and corpus.stats.skipped == 0
    assert len(load_corpus(str(prefix), LANGS, ["de-en"])) == 2  # "src-tgt" strings work too


def test_aligned_empty_lines_are_skipped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines = {"en": ["a", "b", "c"], "de": ["A", "  ", "C"], "fr": ["", "β", "γ"]}
    prefix = aligned(tmp_path, lines)
    with caplog.at_level(logging.WARNING, logger="polyseq.data.corpus"):
        corpus = load_corpus(prefix, LANGS, [("en", "de"), ("en", "fr")])
    assert [p.src for p in corpus] == ["a", "c", "b", "c"]
    assert corpus.stats.records == 6 and corpus.stats.skipped_empty == 2
    assert corpus.stats.skipped_at == (f"{prefix}.de:2", f"{prefix}.fr:1")
    assert "skipped 2 with an empty side" in caplog.text


def test_an_aligned_corpus_gives_no_copies_for_a_same_language_direction(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    prefix = aligned(tmp_path, {"en": ["a dog", "a cat"], "de": ["ein Hund", "eine Katze"]})
    with caplog.at_level(logging.WARNING):
        corpus = load_corpus(prefix, LANGS, [("en", "de"), ("en", "en")])
    assert [(p.src_lang, p.tgt_lang) for p in corpus] == [("en", "de")] * 2
    assert corpus.stats.skipped_direction == 2 and "no en-en pairs" in caplog.text


def test_the_ends_of_a_sentence_lose_their_whitespace(tmp_path: Path) -> None:
    prefix = aligned(tmp_path, {"en": [" a  dog \t"], "de": ["ein Hund "]})
    assert [(p.src, p.tgt) for p in load_corpus(prefix, LANGS, [("en", "de")])] == [("a  dog", "ein Hund")]


def test_aligned_line_counts_must_match(tmp_path: Path) -> None:
    prefix = aligned(tmp_path, {"en": ["a", "b", "c"], "de": ["A", "B"]})
    with pytest.raises(CorpusError, match=r"train\.en has 3 lines but .*train\.de has 2"):
        load_corpus(prefix, ["en", "de"], [("en", "de")])


def test_aligned_missing_language_file(tmp_path: Path) -> None:
    prefix = aligned(tmp_path, {"en": ["a"], "de": ["A"]})
    with pytest.raises(CorpusError, match=r"train\.fr does not exist: direction en-fr needs"):
        load_corpus(prefix, LANGS, [("en", "de"), ("en", "fr")])


def test_directions_must_use_known_languages(tmp_path: Path) -> None:
    prefix = aligned(tmp_path, {"en": ["a"], "de": ["A"]})
    with pytest.raises(CorpusError, match=r"direction en-es uses 'es'.*\(en, de\)"):
        load_corpus(prefix, ["en", "de"], [("en", "es")])
    with pytest.raises(CorpusError, match="no directions requested"):
        load_corpus(prefix, ["en", "de"], [])
    with pytest.raises(CorpusError, match="must be a \\(src, tgt\\) pair"):
        load_corpus(prefix, ["en", "de"], ["en-de-fr"])


# ----------------------------------------------------------------------------- TSV


def test_tsv_two_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "c.tsv", "a dog\tein Hund\n\tleer\ntwo\tzwei\n")
    corpus = load_corpus(path, LANGS, [("en", "de")])
    assert list(corpus) == [Pair("a dog", "ein Hund", "en", "de"), Pair("two", "zwei", "en", "de")]
    assert corpus.stats.skipped_empty == 1 and corpus.stats.skipped_at == (f"{path}:2",)
    with pytest.raises(CorpusError, match="2-column TSV holds one direction but 2 were requested"):
        load_corpus(path, LANGS, [("en", "de"), ("de", "en")])


def test_tsv_four_columns_route_directions(tmp_path: Path) -> None:
    rows = ["en\tde\ta\tA", "de\ten\tB\tb", "en\tfr\tc\tγ"]
    path = write(tmp_path / "c.tsv", "\n".join(rows))
    corpus = load_corpus(path, LANGS, [("en", "de"), ("de", "en")])
    assert list(corpus) == [Pair("a", "A", "en", "de"), Pair("B", "b", "de", "en")]
    assert corpus.stats.skipped_direction == 1
    assert "skipped 1 of directions not requested" in corpus.stats.summary()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a\tA\nb\tB\tX\n", r"c\.tsv:2: found 3 columns, expected 2"),
        ("a\tA\n\nb\tB\n", r"c\.tsv:2: found an empty line, expected 2"),
        ("one column\n", r"c\.tsv:1: found 1 tab-separated columns; a TSV corpus has 2"),
        ("en\tes\ta\tA\n", r"c\.tsv:1: unknown language 'es'; the languages are en, de, fr"),
    ],
)
def test_tsv_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "c.tsv", text)
    with pytest.raises(CorpusError, match=message):
        load_corpus(path, LANGS, [("en", "de")])


# ----------------------------------------------------------------------------- JSONL


def jsonl(path: Path, *records: object) -> Path:
    return write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def test_jsonl_languages_default_to_the_single_direction(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "c.jsonl", {"src": "a", "tgt": "A", "id": 7},
                 {"src": "B", "tgt": "b", "src_lang": "de", "tgt_lang": "en"})
    corpus = load_corpus(path, LANGS, [("en", "de")])
    assert list(corpus) == [Pair("a", "A", "en", "de")]
    assert corpus.stats.skipped_direction == 1


def test_jsonl_with_languages_on_every_line(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "c.jsonl",
                 {"src": "a", "tgt": "A", "src_lang": "en", "tgt_lang": "de"},
                 {"src": "B", "tgt": "b", "src_lang": "de", "tgt_lang": "en"})
    corpus = load_corpus(path, LANGS, [("en", "de"), ("de", "en")])
    assert [(p.src, p.tgt_lang) for p in corpus] == [("a", "de"), ("B", "en")]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"src": "a", "tgt": ', r"c\.jsonl:2: invalid JSON: Expecting value, col 21"),
        ("", r"c\.jsonl:2: empty line; each line must be one JSON object"),
        ('["a", "A"]', r"c\.jsonl:2: expected a JSON object"),
        ('{"src": "a"}', r"c\.jsonl:2: 'tgt' must be a string, found None"),
        ('{"src": 1, "tgt": "A"}', r"c\.jsonl:2: 'src' must be a string, found 1"),
        ('{"src": "a", "tgt": "A", "tgt_lang": "xx"}', r"c\.jsonl:2: unknown language 'xx'"),
        ('{"src": "a", "tgt": "A", "tgt_lang": ["de"]}', r"c\.jsonl:2: 'tgt_lang' must be a"),
        ('{"src": "half \\ud83d an emoji", "tgt": "A"}',
         r"c\.jsonl:2: 'src' is not valid Unicode .* at character 5"),
    ],
)
def test_jsonl_errors_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = write(tmp_path / "c.jsonl", '{"src": "ok", "tgt": "OK"}\n' + line + "\n")
    with pytest.raises(CorpusError, match=message):
        load_corpus(path, LANGS, [("en", "de")])


def test_jsonl_needs_languages_for_several_directions(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "c.jsonl", {"src": "a", "tgt": "A", "src_lang": "en"})
    with pytest.raises(CorpusError, match=r"c\.jsonl:1: no src_lang/tgt_lang"):
        load_corpus(path, LANGS, [("en", "de"), ("de", "en")])


def test_corpus_with_no_usable_pairs_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "c.tsv", "\tA\n")
    with pytest.raises(CorpusError, match="no pairs.*skipped 1 with an empty side"):
        load_corpus(path, LANGS, [("en", "de")])


# ----------------------------------------------------------------------------- encode, filter


def test_encode_pairs_uses_source_and_target_ids(tok: Tokenizer) -> None:
    pairs = [Pair("a dog", "ein Hund", "en", "de"), Pair("ein Hund", "a dog", "de", "en"),
             Pair("a dog", "un chien", "en", "fr"), Pair("a dog", "ein Hund", "en", "de")]
    examples = encode_pairs(pairs, tok)
    assert list(examples) == [
        Example(tok.source_ids(p.src, p.tgt_lang), tok.target_ids(p.tgt, p.tgt_lang))
        for p in pairs
    ]
    assert examples[0].src[0] == tok.lang_id("de") and examples[0].tgt[-1] == tok.eos_id
    assert list(encode_pairs([], tok)) == []
    with pytest.raises(UnknownLanguageError):
        encode_pairs([Pair("a", "b", "en", "es")], tok)


def example(src_len: int, tgt_len: int) -> Example:
    return Example(list(range(src_len)), list(range(tgt_len)))


def test_filter_examples_reports_what_it_drops() -> None:
    examples = [example(10, 10), example(11, 3), example(4, 30), example(6, 19), example(6, 18),
                example(30, 5), example(31, 5)]
    kept, report = filter_examples(examples, max_length=30, max_ratio=3.0)
    # (11, 3) and (4, 30) are exempt from the ratio: one side is shorter than 5 tokens
    assert kept == [examples[i] for i in (0, 1, 2, 4)]
    assert (report.total, report.kept, report.too_long, report.bad_ratio) == (7, 4, 1, 2)
    assert report.summary() == (
        "kept 4 of 7 pairs; dropped 1 too long (> 30 tokens), 2 length ratio > 3.0"
    )
    assert filter_examples(examples[:1], max_length=30, max_ratio=3.0)[1].summary() == (
        "kept all 1 pairs"
    )
    with pytest.raises(ValueError, match="max_ratio >= 1"):
        filter_examples(examples, max_length=30, max_ratio=0.5)


# ----------------------------------------------------------------------------- real data


@pytest.mark.skipif(not MULTI30K.is_dir(), reason=f"multi30k not found at {MULTI30K}")
def test_multi30k_validation_set(tok: Tokenizer) -> None:
    langs = ("en", "de", "fr", "cs")
    directions = [(a, b) for a in langs for b in langs if a != b]
    corpus = load_corpus(MULTI30K / "val", langs, directions)
    assert len(corpus) == 12 * 1014 and corpus.stats.skipped == 0
    first = read_lines(MULTI30K / "val.en")[0]
    assert corpus[0].src == first and corpus[0].tgt == read_lines(MULTI30K / "val.de")[0]
    subset = [p for p in corpus if p.src_lang != "cs" and p.tgt_lang != "cs"][:500]
    assert len(encode_pairs(subset, tok)) == 500
