"""Code-switching: a lexicon induced from planted word pairs among random fillers, switching on
hand-made sentences (spacing, punctuation, case, spans, rates), purity, the TSV file and its
errors, and the en -> de lexicon of the real multi30k."""

from __future__ import annotations

import random
import re
from pathlib import Path
from random import Random

import pytest

from polyseq.data import codeswitch
from polyseq.data.codeswitch import (
    Entry,
    Lexicon,
    LexiconError,
    code_switch,
    induce_from_corpus,
    induce_lexicon,
    switch_text,
)
from polyseq.files import InputError

MULTI30K = Path(__file__).resolve().parents[3] / "shared" / "data" / "multi30k"
PLANTED = {"house": "Haus", "cat": "Katze", "water": "wasser", "green": "grün", "runs": "läuft"}
LEXICON = Lexicon.from_pairs("en", "de", {"the": "der", "dog": "Hund", "big": "groß", "runs": "rennt",
                                          "fast": "schnell", "and": "und", "cat": "Katze"})
TEXT = "The big dog\truns  fast, and THE CAT (a 3D cat) runs!\n  Dog-days: the cat's dog…"


def filler(rng: Random, letters: str) -> str:
    return "".join(rng.choice(letters) for _ in range(rng.randint(3, 7)))


def sentence(words: list[str]) -> str:
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def synthetic_pairs(seed: int = 0, count: int = 1000) -> list[tuple[str, str]]:
    """Sentence pairs of random filler words, drawn apart on each side, with the PLANTED pairs
    put into about a fifth of them each (on both sides, in random places); "the" and "die" are in
    every pair."""
    rng = Random(seed)
    src_vocab = sorted({filler(rng, "abcdefghijklmnop") for _ in range(80)})
    tgt_vocab = sorted({filler(rng, "ghijklmnopqrstuvwxyz") for _ in range(80)})
    pairs = []
    for _ in range(count):
        src = ["the", *rng.sample(src_vocab, 4)]
        tgt = ["die", *rng.sample(tgt_vocab, 4)]
        for word, translation in PLANTED.items():
            if rng.random() < 0.2:
                src.insert(rng.randrange(len(src) + 1), word)
                tgt.insert(rng.randrange(len(tgt) + 1), translation)
        rng.shuffle(tgt)
        pairs.append((sentence(src), sentence(tgt)))
    return pairs


# --------------------------------------------------------------------------- induction


def test_induction_finds_the_planted_pairs_and_no_filler() -> None:
    pairs = synthetic_pairs()
    lexicon = induce_lexicon(pairs, "en", "de")
    assert lexicon.translations == PLANTED  # each as written away from a sentence's start
    assert lexicon.get("house") == lexicon.get("HOUSE") and lexicon.get("house").target == "Haus"
    assert all(entry.score == 1.0 and entry.count > 50 for entry in lexicon.entries)
    # "the" and "die" are in every pair: too frequent to be aligned by co-occurrence, unless allowed
    assert "the" not in lexicon
    assert induce_lexicon(pairs, "en", "de", max_share=1.0).translations["the"] == "die"


def test_induction_is_deterministic_and_keeps_usual_forms() -> None:
    pairs = synthetic_pairs(seed=1)
    shuffled = list(pairs)
    Random(5).shuffle(shuffled)
    assert induce_lexicon(pairs, "en", "de") == induce_lexicon(shuffled, "en", "de")
    # a word's form at a sentence's start says nothing about its case: Cat and cat are as frequent
    lines = [("Cat and dogs.", "Katze und Hunde."), ("A cat, two birds.", "Eine Katze, zwei Vögel."),
             ("Dogs or birds.", "Hunde oder Vögel."), ("Two dogs.", "Zwei Hunde.")] * 2
    lexicon = induce_lexicon(lines, "en", "de", min_count=2, max_share=1.0)
    assert lexicon.translations == {"cat": "Katze", "dogs": "Hunde", "birds": "Vögel", "and": "und",
                                    "or": "oder", "two": "zwei"}
    assert lexicon.get("Cat") == Entry("cat", "Katze", 4, 1.0) and lexicon.get("or").count == 2


def test_induction_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="min_count"):
        induce_lexicon([], "en", "de", min_count=0)
    with pytest.raises(ValueError, match="max_share"):
        induce_lexicon([], "en", "de", max_share=0.0)
    assert len(induce_lexicon([], "en", "de")) == 0


# --------------------------------------------------------------------------- switching


def test_rate_one_switches_every_covered_word_keeping_everything_else() -> None:
    result = switch_text(TEXT, LEXICON, Random(0), 1.0)
    assert result.text == ("Der groß Hund\trennt  schnell, und DER KATZE (a 3D Katze) rennt!\n"
                           "  Hund-days: der Katze's Hund…")
    assert (result.switched, result.covered, result.words) == (14, 14, 17)


def test_rate_zero_returns_the_text_and_draws_nothing() -> None:
    rng = Random(3)
    state = rng.getstate()
    result = switch_text(TEXT, LEXICON, rng, 0.0)
    assert result.text == TEXT and result.switched == 0 and result.covered == 14
    assert rng.getstate() == state


def test_case_follows_the_word_relative_to_its_usual_form() -> None:
    german = Lexicon.from_pairs("de", "en", {"Hund": "dog", "ein": "a"})
    assert code_switch("Ein Hund, ein HUND, ein hund", german, Random(0), 1.0) == "A dog, a DOG, a dog"
    english = Lexicon.from_pairs("en", "de", {"dog": "hund", "iphone": "handy"})
    assert code_switch("dog Dog DOG iPhone", english, Random(0), 1.0) == "hund Hund HUND handy"


def test_switching_is_seeded_and_pure() -> None:
    text = " ".join(["The big dog runs fast and the cat runs."] * 4)
    state = random.getstate()
    first = code_switch(text, LEXICON, Random(7), 0.4)
    assert random.getstate() == state  # the global generator is never used
    assert code_switch(text, LEXICON, Random(7), 0.4) == first != text
    outputs = {code_switch(text, LEXICON, Random(seed), 0.4) for seed in range(20)}
    assert len(outputs) >= 18
    mutable = [name for name, value in vars(codeswitch).items()
               if not name.startswith("__") and isinstance(value, (list, dict, set))]
    assert not mutable


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.7])
def test_switched_words_are_the_rate_of_covered_words_and_come_in_spans(rate: float) -> None:
    text = "The big dog runs fast and the cat runs, 2 dogs. " * 300  # "dogs" and 2 end a run
    rng = Random(11)
    result = switch_text(text, LEXICON, rng, rate)
    assert abs(result.switched / result.covered - rate) < 0.03
    # spans: the next word of a run after a switched one is switched with probability max(rate, SPAN)
    switched = [a != b for a, b in zip(re.findall(r"\w+", text), re.findall(r"\w+", result.text),
                                       strict=True)]
    runs = [switched[i:i + 9] for i in range(0, len(switched), 11)]  # 9 covered words, "2 dogs"
    after = [b for run in runs for a, b in zip(run, run[1:], strict=False) if a]
    assert abs(sum(after) / len(after) - max(rate, codeswitch.SPAN)) < 0.05
    separators = re.split(r"\w+", text)
    for seed in range(5):
        assert re.split(r"\w+", code_switch(text[:200], LEXICON, Random(seed), rate)) == separators[:len(
            re.split(r"\w+", text[:200]))]


def test_bad_rates_are_refused() -> None:
    for rate, span in ((1.5, 0.5), (-0.1, 0.5), (float("nan"), 0.5), (0.5, 2.0)):
        with pytest.raises(ValueError, match="must be in"):
            switch_text("the dog", LEXICON, Random(0), rate, span)


# --------------------------------------------------------------------------- the lexicon file


def test_tsv_round_trip(tmp_path: Path) -> None:
    lexicon = induce_lexicon(synthetic_pairs(), "en", "de")
    path = tmp_path / "en-de.tsv"
    lexicon.save(path)
    lexicon.save(path)  # over the old one, atomically: no temporary file is left
    assert Lexicon.load(path) == lexicon and [p.name for p in tmp_path.iterdir()] == ["en-de.tsv"]
    assert path.read_text(encoding="utf-8").startswith("en\tde\tcount\tdice\n")
    LEXICON.save(path)
    assert Lexicon.load(path) == LEXICON
    (tmp_path / "hand.tsv").write_text("en\tfr\ndog\tchien\nice\tla glace\n", encoding="utf-8")
    assert Lexicon.load(tmp_path / "hand.tsv").translations == {"dog": "chien", "ice": "la glace"}


@pytest.mark.parametrize(("content", "where", "what"), [
    ("", "", "is empty"),
    ("dog\tHund\t5\n", "line 1", "the header must be"),
    ("en-GB\tde\n", "line 1", "invalid language code"),
    ("en\tde\ndog\tHund\n\n", "line 3", "found an empty line"),
    ("en\tde\ndog\tHund\tx\n", "line 2", "found 3 tab-separated columns"),
    ("en\tde\tcount\tdice\ndog\tHund\tmany\t0.5\n", "line 2", "count must be a whole number"),
    ("en\tde\tcount\tdice\ndog\tHund\t3\t1.5\n", "line 2", "dice in [0, 1]"),
    ("en\tde\ndog\tHund\ncat\tKatze\nDog\tHündchen\n", "line 4", "'dog' is listed more than once"),
    ("en\tde\nice cream\tEis\n", "line 2", "one word of letters"),
    ("en\tde\ndog\t\n", "line 2", "translation must be non-empty"),
])
def test_malformed_files_name_file_and_line(tmp_path: Path, content: str, where: str, what: str) -> None:
    path = tmp_path / "lexicon.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LexiconError) as error:
        Lexicon.load(path)
    assert str(error.value).startswith(f"{path}{', ' + where if where else ''}") and what in str(error.value)


def test_unreadable_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        Lexicon.load(tmp_path / "missing.tsv")
    (tmp_path / "latin1.tsv").write_bytes("en\tde\nhouse\tH\xe4user\n".encode("latin-1"))
    with pytest.raises(InputError, match="line 2, .*not valid UTF-8"):
        Lexicon.load(tmp_path / "latin1.tsv")


# --------------------------------------------------------------------------- real data


@pytest.mark.skipif(not MULTI30K.is_dir(), reason=f"multi30k not found at {MULTI30K}")
def test_multi30k_english_german_lexicon() -> None:
    lexicon = induce_from_corpus(MULTI30K / "train", "en", "de")
    assert len(lexicon) > 1500
    found = {word: lexicon.get(word).target for word in
             ("dog", "man", "woman", "two", "men", "girl", "water", "street", "and", "with")}
    assert found == {"dog": "Hund", "man": "Mann", "woman": "Frau", "two": "zwei", "men": "Männer",
                     "girl": "Mädchen", "water": "Wasser", "street": "Straße", "and": "und",
                     "with": "mit"}
    assert code_switch("Two dogs and a man.", lexicon, Random(0), 1.0) == "Zwei Hunde und a Mann."
