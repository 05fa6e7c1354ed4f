"""Synthetic errors: each kind of noise on hand-made sentences, determinism and purity, confusion
sets learned from planted edits and from real UA-GEC pairs, and synthetic pairs' keep share."""

from __future__ import annotations

import random
from pathlib import Path
from random import Random

import pytest

from polyseq.data import noise
from polyseq.data.noise import (
    MARKS,
    NoiseRates,
    apply_confusions,
    casing_noise,
    corrupt,
    delete_words,
    double_char,
    drop_char,
    frequent_words,
    insert_words,
    keyboard_neighbours,
    keyboard_typo,
    learn_confusions,
    punctuation_noise,
    repeat_words,
    swap_chars,
    swap_words,
    synthetic_pairs,
    typos,
)

UA_GEC = Path(__file__).resolve().parents[3] / "shared" / "data" / "ua-gec"
SENTENCE = "Колись давно я прочитав статтю, чи просто коментар – вже не згадаю."
ENGLISH = "Yesterday the quick brown fox jumped over the lazy dog, and then it slept."
EVERYTHING = NoiseRates(typo=0.2, delete=0.1, insert=0.1, swap=0.1, repeat=0.1, punctuation=0.2,
                        casing=0.1, confusion=0.5)
SEEDS = range(30)


def differences(a: str, b: str) -> list[int]:
    assert len(a) == len(b)
    return [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]


def without_marks(text: str) -> list[str]:
    return text.translate(str.maketrans("", "", MARKS)).split()


# ----------------------------------------------------------------------------- character typos


def test_keyboard_neighbours_follow_the_layouts() -> None:
    assert set(keyboard_neighbours("s")) == set("adwezx")
    assert set(keyboard_neighbours("S")) == set("adwezx")
    assert set(keyboard_neighbours("і")) == set("фвцуяч")  # ЙЦУКЕН: і where ы is in Russian
    assert set(keyboard_neighbours("ї")) == set("хє")
    assert keyboard_neighbours("é") == keyboard_neighbours("7") == ""


@pytest.mark.parametrize("word", ["Київ", "прочитав", "Keyboard"])
def test_a_keyboard_typo_replaces_one_letter_by_a_neighbour_in_its_case(word: str) -> None:
    for seed in SEEDS:
        typo = keyboard_typo(word, Random(seed))
        [i] = differences(word, typo)
        assert typo[i].lower() in keyboard_neighbours(word[i])
        assert typo[i].isupper() == word[i].isupper()


def test_a_doubled_letter_is_the_word_with_one_letter_written_twice() -> None:
    word = "статтю"
    for seed in SEEDS:
        typo = double_char(word, Random(seed))
        assert len(typo) == len(word) + 1
        i = next((i for i in range(len(word)) if typo[i] != word[i]), len(word))
        assert typo[:i] + typo[i + 1:] == word and typo[i] in (typo[i - 1], typo[i + 1:i + 2])


def test_a_dropped_letter_makes_the_word_one_shorter_and_keeps_one_letter_words() -> None:
    word = "коментар"
    for seed in SEEDS:
        typo = drop_char(word, Random(seed))
        assert len(typo) == len(word) - 1
        assert any(word[:i] + word[i + 1:] == typo for i in range(len(word)))
    assert drop_char("я", Random(1)) == "я"
    assert drop_char("2024,", Random(1)) == "2024,"  # letters only


def test_a_swap_exchanges_two_different_neighbouring_letters() -> None:
    word = "зараз"
    for seed in SEEDS:
        typo = swap_chars(word, Random(seed))
        i, j = differences(word, typo)
        assert j == i + 1 and (typo[i], typo[j]) == (word[j], word[i])
    assert swap_chars("aaa", Random(1)) == "aaa"  # nothing to exchange


def test_typos_give_each_chosen_word_one_typo_of_the_asked_kind() -> None:
    words = SENTENCE.split(" ")
    dropped = typos(words, Random(3), 1.0, kinds=("drop",))
    for before, after in zip(words, dropped, strict=True):
        expected = len(before) - (sum(c.isalpha() for c in before) >= 2)
        assert len(after) == expected
    swapped = typos(words, Random(3), 0.3, kinds=("swap",))
    changed = [(a, b) for a, b in zip(words, swapped, strict=True) if a != b]
    assert changed and all(sorted(a) == sorted(b) for a, b in changed)


# ----------------------------------------------------------------------------- word noise


def test_word_deletions_keep_the_order_and_never_empty_the_sentence() -> None:
    words = SENTENCE.split(" ")
    kept = delete_words(words, Random(2), 0.4)
    assert len(kept) < len(words)
    rest = iter(words)
    assert all(word in rest for word in kept)  # a subsequence
    assert delete_words(["один"], Random(2), 1.0) == ["один"]


def test_insertions_add_fillers_between_the_words() -> None:
    words = ["я", "прочитав", "статтю"]
    inserted = insert_words(words, Random(5), 1.0, fillers=("ну", "ж"))
    assert inserted[1::2] == words and set(inserted[::2]) <= {"ну", "ж"}
    some = insert_words(words * 3, Random(5), 0.3, fillers=("ну", "ж"))
    assert 9 < len(some) < 18 and [w for w in some if w not in ("ну", "ж")] == words * 3
    from_itself = insert_words(words, Random(5), 1.0)
    assert len(from_itself) == 6 and set(from_itself) == set(words)


def test_word_swaps_exchange_neighbours_and_leave_punctuation_in_place() -> None:
    assert swap_words(["one", "two", "three", "four"], Random(1), 1.0) == ["two", "one", "four", "three"]
    assert swap_words(["я", "прочитав,", "статтю."], Random(1), 1.0) == ["прочитав", "я,", "статтю."]


def test_repetitions_write_a_word_twice_with_its_punctuation_once() -> None:
    assert repeat_words(["мама", "мила", "раму."], Random(1), 1.0) == \
        ["мама", "мама", "мила", "мила", "раму", "раму."]


def test_punctuation_noise_changes_only_punctuation() -> None:
    changed = 0
    for seed in SEEDS:
        noisy = " ".join(punctuation_noise(SENTENCE.split(" "), Random(seed), 0.3))
        assert without_marks(noisy) == without_marks(SENTENCE)
        changed += noisy != SENTENCE
    assert changed > len(SEEDS) // 2
    assert punctuation_noise(["Так", "–", "ні"], Random(1), 1.0) == ["Так,", "ні"]


def test_casing_noise_flips_only_first_letters() -> None:
    for seed in SEEDS:
        noisy = " ".join(casing_noise(SENTENCE.split(" "), Random(seed), 0.3))
        assert noisy.lower() == SENTENCE.lower()
        for before, after in zip(SENTENCE.split(" "), noisy.split(" "), strict=True):
            assert before[1:] == after[1:]
    assert casing_noise(["Київ", "2020-го"], Random(1), 1.0) == ["київ", "2020-го"]


def test_confusions_replace_tokens_in_their_case_and_keep_the_spacing() -> None:
    confusions = {"у": [("в", 3)], "—": [("-", 1)]}
    text = "Я живу у Києві —  У мене є кіт."
    assert apply_confusions(text, Random(1), 1.0, confusions) == "Я живу в Києві -  В мене є кіт."
    assert apply_confusions(text, Random(1), 0.0, confusions) == text


# ----------------------------------------------------------------------------- composition


def test_noise_is_seeded_and_pure() -> None:
    confusions = {"the": [("a", 2)], "and": [("an", 1)]}
    fillers = ("the", "a", "of")
    state = random.getstate()
    first = corrupt(ENGLISH, Random(7), EVERYTHING, confusions, fillers)
    assert random.getstate() == state  # the global generator is never used
    assert corrupt(ENGLISH, Random(7), EVERYTHING, confusions, fillers) == first
    outputs = {corrupt(ENGLISH, Random(seed), EVERYTHING, confusions, fillers) for seed in SEEDS}
    assert len(outputs) > len(SEEDS) * 0.9
    assert corrupt(ENGLISH, Random(7), NoiseRates(), confusions, fillers) == ENGLISH
    mutable = [name for name, value in vars(noise).items()
               if not name.startswith("__") and isinstance(value, (list, dict, set))]
    assert not mutable  # no module-level state that one call could leave for the next


def test_each_rate_alone_changes_the_text() -> None:
    for name in ("typo", "delete", "insert", "swap", "repeat", "punctuation", "casing", "confusion"):
        rates = NoiseRates(**{name: 0.5})
        assert corrupt(SENTENCE, Random(1), rates, {"вже": [("уже", 1)]}) != SENTENCE, name
    with pytest.raises(ValueError, match="typo"):
        NoiseRates(typo=1.5)


def test_synthetic_pairs_keep_exactly_their_share_unchanged() -> None:
    sentences = [f"Речення номер {n} про кота, який спав." for n in range(10)]
    pairs = synthetic_pairs(sentences, Random(4), NoiseRates(typo=0.05), count=25, keep=0.2)
    assert len(pairs) == 25
    assert sum(src == tgt for src, tgt in pairs) == 5  # low rates are retried, not left unchanged
    targets = [tgt for _, tgt in pairs]
    assert sorted(targets[:10]) == sorted(targets[10:20]) == sorted(sentences)  # every line a pass
    assert synthetic_pairs(sentences, Random(4), NoiseRates(typo=0.05), count=25, keep=0.2) == pairs
    assert synthetic_pairs(sentences, Random(5), NoiseRates(typo=0.05), count=25, keep=0.2) != pairs


# ----------------------------------------------------------------------------- learned confusions


def test_learned_confusions_find_planted_substitutions_and_ignore_rare_ones() -> None:
    pairs = [
        ("Я живу в Києві.", "Я живу у Києві."),
        ("Він був в школі, але пішов.", "Він був у школі, але пішов."),
        ("Вона в місті", "Вона у місті"),
        ("Я прочітав книгу.", "Я прочитав книгу."),  # once: a typo, not a confusion
        ("Київ гарний.", "київ гарний."),  # case alone
        ("Все добре.", "Все добре."),
        ("Ми йдемо в кіно", "Ми йдемо до кіно"),
    ]
    confusions = learn_confusions(pairs, min_count=2)
    assert confusions == {"у": [("в", 3)]}
    everything = learn_confusions(pairs, min_count=1)
    assert everything["у"] == [("в", 3)] and everything["прочитав"] == [("прочітав", 1)]
    assert everything["до"] == [("в", 1)] and "київ" not in everything


def test_frequent_words_are_counted_without_case_or_punctuation() -> None:
    assert frequent_words(["A cat, a dog.", "The cat!"], n=2) == ["a", "cat"]


def test_confusions_learned_from_real_ua_gec_pairs_are_its_frequent_errors() -> None:
    src, ref = UA_GEC / "gec-only.train.src.txt", UA_GEC / "gec-only.train.ref0.txt"
    if not src.is_file() or not ref.is_file():
        pytest.skip(f"UA-GEC is not at {UA_GEC} (see ../shared/data/README.md)")
    with src.open(encoding="utf-8") as a, ref.open(encoding="utf-8") as b:
        pairs = [(x.rstrip("\n"), y.rstrip("\n")) for _, x, y in zip(range(2000), a, b, strict=False)]
    confusions = learn_confusions(pairs, min_count=2)
    # the hyphen written for the dash, and the euphony alternations у/в, із/з, уже/вже
    assert confusions["—"][0][0] == "-" and confusions["—"][0][1] > 100
    assert confusions["у"][0][0] == "в" and confusions["у"][0][1] > 20
    assert confusions["із"][0][0] == "з" and ("вже", 12) in confusions["уже"]
    assert "сьогодні" not in confusions  # "согодні" once: a typo, not a confusion
    assert 10 < len(confusions) < 100
    noisy = apply_confusions("Я живу у Києві із дружиною — і вже давно.", Random(1), 1.0, confusions)
    assert "в Києві" in noisy and " з дружиною" in noisy
