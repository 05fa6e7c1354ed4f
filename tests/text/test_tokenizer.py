"""Tokenizer: lossless round trips, language tags, special ids, files and the errors users see."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pytest
import sentencepiece as spm
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from polyseq.text.tokenizer import Tokenizer, TokenizerError, UnknownLanguageError

LANGUAGES = ("en", "de", "zh_Hant")
WORDS = {
    "en": str.split("the a dog runs over green field while children play with ball near house"),
    "de": str.split("der die das Hund läuft über grüne Wiese während Kinder spielen mit Ball"),
    "zh_Hant": str.split("狗 在 綠色 草地 上 跑 孩子們 玩 球 房子 附近"),
}
TRICKY = st.sampled_from(" \t\n\r\x00▁a😀ü\u3000\u00a0<2en>")
FIXTURE_OK = [HealthCheck.function_scoped_fixture]


def make_texts(count: int = 600, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for i in range(count):
        words = WORDS[LANGUAGES[i % len(LANGUAGES)]]
        texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(2, 12))) + ".")
    return texts


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Tokenizer, Path]:
    directory = tmp_path_factory.mktemp("tokenizer")
    return Tokenizer.train(make_texts(), directory, vocab_size=360, languages=LANGUAGES), directory


@pytest.fixture(scope="module")
def tok(trained: tuple[Tokenizer, Path]) -> Tokenizer:
    return trained[0]


# ----------------------------------------------------------------------------- vocabulary


def test_special_ids_and_language_tags(tok: Tokenizer) -> None:
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert [tok.piece(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert tok.languages == LANGUAGES
    assert tok.vocab_size == 360
    tags = [tok.lang_id(lang) for lang in LANGUAGES]
    assert len(set(tags)) == 3 and all(i > 3 for i in tags)
    assert [tok.piece(i) for i in tags] == ["<2en>", "<2de>", "<2zh_Hant>"]
    assert [tok.lang_of_id(i) for i in tags] == list(LANGUAGES)
    assert tok.lang_of_id(tok.eos_id) is None
    assert all(tok.is_special(i) for i in [0, 1, 2, 3, *tags])
    assert not any(tok.is_special(i) for i in tok.encode("the dog"))
    assert tok.decoder_start_id("de") == tok.lang_id("de")


def test_unknown_language_suggests_a_close_one(tok: Tokenizer) -> None:
    with pytest.raises(UnknownLanguageError, match=r"'dee'.*did you mean 'de'.*en, de, zh_Hant"):
        tok.lang_id("dee")
    for typed, meant in (("EN", "en"), ("de-DE", "de"), ("de_AT", "de"), ("ZH-HANT", "zh_Hant")):
        with pytest.raises(UnknownLanguageError, match=f"'{typed}'; did you mean '{meant}'"):
            tok.lang_id(typed)
    with pytest.raises(ValueError, match="known languages: en, de, zh_Hant"):
        tok.source_ids("hello", "xx")


# ----------------------------------------------------------------------------- round trips

EDGE_CASES = [
    "",
    "  two  spaces  ",
    " leading",
    "trailing ",
    "\ttab\tseparated\t",
    "line\nbreak\r\n",
    "emoji 😀👍🏽 and flags 🇩🇪",
    "ﬁ ligature, ① circled, Ａ fullwidth, e\u0301 combining",  # no NFKC folding
    "a▁b ▁ ▁▁",  # U+2581, SentencePiece's own space symbol
    "<2en> <2de> <s> </s> <pad> <unk>",  # look like specials but are plain text
    "\x00nul \x7f del \u200b zwsp \ufeff bom \u2028 sep",
    "日本語の文と 한국어 문장 and עברית",
]


@pytest.mark.parametrize("text", EDGE_CASES)
def test_round_trip_edge_cases(tok: Tokenizer, text: str) -> None:
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert not any(tok.is_special(i) for i in ids)


@settings(max_examples=400, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.one_of(st.text(), st.text(alphabet=TRICKY)))
@example("a▁b")
def test_round_trip_any_text(tok: Tokenizer, text: str) -> None:
    assert tok.decode(tok.encode(text)) == text


@settings(max_examples=50, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.lists(st.text(alphabet=TRICKY, max_size=12), max_size=6))
def test_batch_matches_single(tok: Tokenizer, texts: list[str]) -> None:
    batch = tok.encode_batch(texts)
    assert batch == [tok.encode(text) for text in texts]
    assert tok.decode_batch(batch) == texts


def test_model_inputs_and_decode_skips_specials(tok: Tokenizer) -> None:
    text = "der Hund läuft."
    ids = tok.encode(text)
    assert tok.source_ids(text, "de") == [tok.lang_id("de"), *ids, tok.eos_id]
    assert tok.target_ids(text, "en") == [tok.lang_id("en"), *ids, tok.eos_id]
    assert tok.source_ids_batch([text, ""], "de") == [tok.source_ids(text, "de"), [5, 3]]
    padded = [tok.bos_id, *tok.target_ids(text, "de"), tok.pad_id, tok.pad_id]
    assert tok.decode(padded) == text
    assert tok.decode([tok.unk_id]) != ""  # unk is visible, not skipped


def test_bad_inputs_to_encode_and_decode(tok: Tokenizer) -> None:
    with pytest.raises(TokenizerError, match=r"text 1 is not valid Unicode"):
        tok.encode_batch(["fine", "lone \ud800 surrogate"])
    with pytest.raises(TokenizerError, match="text 0 is a int"):
        tok.encode_batch([7])  # type: ignore[list-item]
    with pytest.raises(TokenizerError, match="use encode for one"):
        tok.encode_batch("a str")
    with pytest.raises(TokenizerError, match=r"token id 360 is outside the vocabulary \(0..359\)"):
        tok.decode([4, 360])
    with pytest.raises(TokenizerError, match="token id -1"):
        tok.decode([-1])


# ----------------------------------------------------------------------------- files


def test_save_and_load(trained: tuple[Tokenizer, Path], tmp_path: Path) -> None:
    tok, directory = trained
    assert Tokenizer.FILES == ("tokenizer.model",)
    assert sorted(p.name for p in directory.iterdir()) == ["tokenizer.model"]
    loaded = Tokenizer.load(directory)
    assert loaded.languages == tok.languages and loaded.vocab_size == tok.vocab_size
    text = "the dog läuft 狗 ▁ 😀"
    assert loaded.encode(text) == tok.encode(text)
    path = loaded.save(tmp_path / "copy")
    assert path.read_bytes() == (directory / "tokenizer.model").read_bytes()
    assert sorted(p.name for p in path.parent.iterdir()) == ["tokenizer.model"]  # no temp file


def test_load_missing_or_corrupt(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match=r"nowhere/tokenizer.model does not exist"):
        Tokenizer.load(tmp_path / "nowhere")
    (tmp_path / "tokenizer.model").write_bytes(b"\x00not a sentencepiece model\xff" * 10)
    with pytest.raises(TokenizerError, match=r"tokenizer.model is not a valid SentencePiece"):
        Tokenizer.load(tmp_path)
    with pytest.raises(TokenizerError, match="pass the directory"):
        Tokenizer.load(tmp_path / "tokenizer.model")


def test_load_rejects_a_foreign_sentencepiece_model(tmp_path: Path) -> None:
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(make_texts(200)), model_prefix=str(tmp_path / "tokenizer"),
        vocab_size=60, minloglevel=2,
    )
    with pytest.raises(TokenizerError, match=r"special ids pad/unk/bos/eos = \(-1, 0, 1, 2\)"):
        Tokenizer.load(tmp_path)


# ----------------------------------------------------------------------------- training


def test_training_is_deterministic(trained: tuple[Tokenizer, Path], tmp_path: Path) -> None:
    _, directory = trained
    Tokenizer.train(iter(make_texts()), tmp_path, vocab_size=360, languages=LANGUAGES)
    first = (directory / "tokenizer.model").read_bytes()
    assert (tmp_path / "tokenizer.model").read_bytes() == first


def test_sampled_training_is_deterministic(tmp_path: Path) -> None:
    models = []
    for name in ("a", "b"):
        Tokenizer.train(make_texts(), tmp_path / name, vocab_size=360, languages=["en"],
                        max_sentences=100, seed=7)
        models.append((tmp_path / name / "tokenizer.model").read_bytes())
    assert models[0] == models[1]


@pytest.mark.parametrize(
    ("languages", "message"),
    [
        (["en", "de en"], "invalid language code 'de en'"),
        (["en", ""], "invalid language code ''"),
        (["en", "x/y"], "invalid language code 'x/y'"),
        (["en", "de", "en"], "listed more than once: en"),
        ([], "at least one language"),
        ("en", "not the string 'en'"),
    ],
)
def test_training_rejects_bad_language_codes(tmp_path: Path, languages, message: str) -> None:
    with pytest.raises(TokenizerError, match=message):
        Tokenizer.train(["a b c"], tmp_path, vocab_size=400, languages=languages)


def test_training_vocab_size_limits(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(TokenizerError, match="vocab_size 200 is too small.*at least 262"):
        Tokenizer.train(make_texts(), tmp_path, vocab_size=200, languages=["en"])
    many_chars = ["".join(chr(0x4E00 + i) for i in range(150))] * 5
    with pytest.raises(TokenizerError, match="too small for this text.*character_coverage"):
        Tokenizer.train(many_chars, tmp_path, vocab_size=300, languages=["en"])
    with caplog.at_level(logging.WARNING, logger="polyseq.text.tokenizer"):
        small = Tokenizer.train(["tiny text"] * 5, tmp_path, vocab_size=1000, languages=["en"])
    assert small.vocab_size < 1000
    assert "more than this text supports" in caplog.text
    assert small.decode(small.encode("tiny text")) == "tiny text"


def test_training_needs_text(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="no training text"):
        Tokenizer.train(["", ""], tmp_path, vocab_size=300, languages=["en"])
    with pytest.raises(TokenizerError, match="training text 1 is a bytes"):
        Tokenizer.train(["ok", b"bytes"], tmp_path, vocab_size=300, languages=["en"])
    assert not (tmp_path / "tokenizer.model").exists()
