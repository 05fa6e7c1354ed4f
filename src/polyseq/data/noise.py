"""Synthetic errors for training correctors: clean text in, text with plausible errors out.

This module owns the kinds of noise and nothing else: character typos (a keyboard neighbour,
a doubled, dropped or swapped letter), word deletions, insertions, swaps and repetitions,
punctuation and casing noise, and confusion sets learned from the edits of real correction pairs
(so that the noise looks like the language's real errors: in UA-GEC, `в` for `у`, `з` for `із`,
`-` for `—`). `synthetic_pairs` turns clean sentences into (noisy source, clean target) pairs and
leaves a share unchanged, so that a corrector also learns to keep correct text.

Every function is pure given its `random.Random`: it reads only its arguments, draws only from
the generator it is passed, and returns new values; the same generator state gives the same
output. There is no module-level mutable state (the keyboard tables are read-only).
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from random import Random
from types import MappingProxyType

Confusions = Mapping[str, Sequence[tuple[str, int]]]

# Rows of letter keys; a key's neighbours are the keys left and right of it and, because rows are
# staggered by about half a key, the two above it at (c, c+1) and the two below at (c-1, c).
_LAYOUTS = (
    ("qwertyuiop", "asdfghjkl", "zxcvbnm"),  # Latin QWERTY
    ("йцукенгшщзхї", "фівапролджє", "ячсмитьбю"),  # Ukrainian ЙЦУКЕН
)


def _neighbour_table() -> dict[str, str]:
    table: dict[str, str] = {}
    for rows in _LAYOUTS:
        for r, row in enumerate(rows):
            for c, key in enumerate(row):
                near = [(r, c - 1), (r, c + 1), (r - 1, c), (r - 1, c + 1), (r + 1, c - 1), (r + 1, c)]
                table[key] = "".join(rows[i][j] for i, j in near
                                     if 0 <= i < len(rows) and 0 <= j < len(rows[i]))
    return table


_NEIGHBOURS: Mapping[str, str] = MappingProxyType(_neighbour_table())

TOKEN_RE = re.compile(r"\w+(?:['’ʼ]\w+)*|[^\w\s]")  # words (with inner apostrophes) and marks
_AFFIX_RE = re.compile(r"^(\W*)(.*?)(\W*)$", re.DOTALL)  # leading marks, the word, trailing marks
MARKS = ",.;:!?-–—"  # what punctuation noise drops or changes (not quotes or brackets: they pair)
_TRIES = 20  # corrupt() again when low rates left a sentence unchanged by chance


def keyboard_neighbours(char: str) -> str:
    """The keys next to `char` on its layout (QWERTY or ЙЦУКЕН), lower case; "" if none."""
    return _NEIGHBOURS.get(char.lower(), "")


# --------------------------------------------------------------------------- character typos


def _letters(word: str) -> list[int]:
    return [i for i, char in enumerate(word) if char.isalpha()]


def keyboard_typo(word: str, rng: Random) -> str:
    """One letter replaced by a neighbouring key, in the letter's case."""
    places = [i for i in _letters(word) if keyboard_neighbours(word[i])]
    if not places:
        return word
    i = rng.choice(places)
    new = rng.choice(keyboard_neighbours(word[i]))
    return word[:i] + (new.upper() if word[i].isupper() else new) + word[i + 1:]


def double_char(word: str, rng: Random) -> str:
    """One letter typed twice."""
    places = _letters(word)
    if not places:
        return word
    i = rng.choice(places)
    return word[:i + 1] + word[i:]


def drop_char(word: str, rng: Random) -> str:
    """One letter left out; a word of one letter stays (dropping it is a word deletion)."""
    places = _letters(word)
    if len(places) < 2:
        return word
    i = rng.choice(places)
    return word[:i] + word[i + 1:]


def swap_chars(word: str, rng: Random) -> str:
    """Two different neighbouring letters exchanged."""
    places = [i for i in range(len(word) - 1)
              if word[i].isalpha() and word[i + 1].isalpha() and word[i] != word[i + 1]]
    if not places:
        return word
    i = rng.choice(places)
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


TYPOS: Mapping[str, Callable[[str, Random], str]] = MappingProxyType({
    "keyboard": keyboard_typo, "double": double_char, "drop": drop_char, "swap": swap_chars,
})


def typos(words: Sequence[str], rng: Random, rate: float,
          kinds: Sequence[str] = tuple(TYPOS)) -> list[str]:
    """Each word with a letter gets, with probability `rate`, one typo of a kind from `kinds`."""
    if not rate:
        return list(words)
    return [TYPOS[rng.choice(kinds)](word, rng) if _has_letter(word) and rng.random() < rate
            else word for word in words]


def _has_letter(word: str) -> bool:
    return any(char.isalpha() for char in word)


# --------------------------------------------------------------------------- word noise
# Word functions take the words of `text.split(" ")` and return new lists; " ".join() of the
# result is the noised text, and every space of the input survives.


def _split_affixes(word: str) -> tuple[str, str, str]:
    match = _AFFIX_RE.match(word)
    assert match is not None  # the pattern matches every string
    lead, core, trail = match.groups()
    return lead, core, trail


def delete_words(words: Sequence[str], rng: Random, rate: float) -> list[str]:
    """Each word dropped with probability `rate`; never all of them."""
    if not rate:
        return list(words)
    kept = [word for word in words if not (word and rng.random() < rate)]
    return kept if any(kept) else list(words)


def insert_words(words: Sequence[str], rng: Random, rate: float,
                 fillers: Sequence[str] = ()) -> list[str]:
    """Before each word, with probability `rate`, a word from `fillers` (a language's frequent
    words: real insertions are mostly function words), or from the sentence when there are none."""
    if not rate:
        return list(words)
    pool = list(fillers) or [core for word in words if (core := _split_affixes(word)[1])]
    if not pool:
        return list(words)
    result: list[str] = []
    for word in words:
        if rng.random() < rate:
            result.append(rng.choice(pool))
        result.append(word)
    return result


def swap_words(words: Sequence[str], rng: Random, rate: float) -> list[str]:
    """Neighbouring words exchanged with probability `rate` per word; punctuation stays in place
    ("a b, c" -> "b a, c"), as in real word-order errors."""
    result = list(words)
    if not rate:
        return result
    i = 0
    while i < len(result) - 1:
        if result[i] and result[i + 1] and rng.random() < rate:
            (lead_a, a, trail_a), (lead_b, b, trail_b) = (_split_affixes(w) for w in result[i:i + 2])
            if a and b and a != b:
                result[i], result[i + 1] = lead_a + b + trail_a, lead_b + a + trail_b
                i += 1  # a word moves once
        i += 1
    return result


def repeat_words(words: Sequence[str], rng: Random, rate: float) -> list[str]:
    """Each word written twice with probability `rate` ("the the"); its punctuation stays once."""
    if not rate:
        return list(words)
    result: list[str] = []
    for word in words:
        lead, core, trail = _split_affixes(word)
        if core and rng.random() < rate:
            result.extend((lead + core, core + trail))
        else:
            result.append(word)
    return result


def punctuation_noise(words: Sequence[str], rng: Random, rate: float) -> list[str]:
    """With probability `rate` per word: a free-standing dash or comma dropped, a word's last mark
    (of MARKS) dropped or changed, or a comma added after a word without one. Missing and extra
    commas are the most frequent real errors (in UA-GEC's first 2,000 training pairs, 229 of the
    361 single tokens that correctors inserted are commas)."""
    if not rate:
        return list(words)
    result: list[str] = []
    for index, word in enumerate(words):
        if not word or rng.random() >= rate:
            result.append(word)
        elif all(char in MARKS for char in word):
            continue  # " — " or " , " left out
        elif word[-1] in MARKS:
            if rng.random() < 0.7:
                result.append(word[:-1])
            else:
                result.append(word[:-1] + rng.choice([m for m in ",.;:" if m != word[-1]]))
        elif _has_letter(word[-1]) and index < len(words) - 1:
            result.append(word + ",")
        else:
            result.append(word)
    return result if any(result) else list(words)


def casing_noise(words: Sequence[str], rng: Random, rate: float) -> list[str]:
    """With probability `rate` a word's first letter in the other case ("київ", "Тому що")."""
    if not rate:
        return list(words)
    result: list[str] = []
    for word in words:
        # the first letter, if the word starts with one: "2020-го" is not a casing error's place
        i = next((i for i, char in enumerate(word) if char.isalnum()), -1)
        if i >= 0 and word[i].isalpha() and rng.random() < rate:
            char = word[i]
            word = word[:i] + (char.lower() if char.isupper() else char.upper()) + word[i + 1:]
        result.append(word)
    return result


# --------------------------------------------------------------------------- learned confusions


def tokens(text: str) -> list[str]:
    """Words and punctuation marks, lower case: what confusion sets are learned over."""
    return TOKEN_RE.findall(text.lower())


def learn_confusions(pairs: Iterable[tuple[str, str]], min_count: int = 2
                     ) -> dict[str, list[tuple[str, int]]]:
    """Single-token substitutions in real (source, corrected) pairs: correct token -> the tokens
    written instead, with counts, most frequent first; only those seen `min_count` times or more.

    Tokens are aligned with difflib's SequenceMatcher; a substitution is a `replace` of one token
    by one token. Differences of case alone are left to casing noise.
    """
    counts: Counter[tuple[str, str]] = Counter()
    for source, corrected in pairs:
        if source == corrected:
            continue
        wrong, right = tokens(source), tokens(corrected)
        matcher = difflib.SequenceMatcher(None, wrong, right, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "replace" and i2 - i1 == 1 and j2 - j1 == 1:
                counts[(right[j1], wrong[i1])] += 1
    table: dict[str, list[tuple[str, int]]] = {}
    for (right_token, wrong_token), count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if count >= min_count:
            table.setdefault(right_token, []).append((wrong_token, count))
    return table


def _in_case_of(model: str, word: str) -> str:
    if len(model) > 1 and model.isupper():
        return word.upper()
    if model[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def apply_confusions(text: str, rng: Random, rate: float, confusions: Confusions) -> str:
    """Each token that has a confusion set is, with probability `rate`, replaced by one of the
    tokens written for it, drawn in proportion to how often; the spacing of `text` is kept."""
    if not rate or not confusions:
        return text

    def replace(match: re.Match[str]) -> str:
        token = match.group()
        choices = confusions.get(token.lower())
        if not choices or rng.random() >= rate:
            return token
        wrong = rng.choices([w for w, _ in choices], weights=[c for _, c in choices])[0]
        return _in_case_of(token, wrong)

    return TOKEN_RE.sub(replace, text)


def frequent_words(texts: Iterable[str], n: int = 100) -> list[str]:
    """The `n` most frequent words of `texts` (lower case, letters only), most frequent first:
    fillers for insert_words."""
    counts = Counter(token for text in texts for token in tokens(text) if _has_letter(token))
    return [word for word, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


# --------------------------------------------------------------------------- composing


@dataclass(frozen=True)
class NoiseRates:
    """Probabilities per word (per token with a confusion set for `confusion`)."""

    typo: float = 0.0
    delete: float = 0.0
    insert: float = 0.0
    swap: float = 0.0
    repeat: float = 0.0
    punctuation: float = 0.0
    casing: float = 0.0
    confusion: float = 0.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"noise rate {field.name} must be in [0, 1], got {value}")


def corrupt(text: str, rng: Random, rates: NoiseRates, confusions: Confusions | None = None,
            fillers: Sequence[str] = ()) -> str:
    """`text` with every kind of noise applied at its rate."""
    text = apply_confusions(text, rng, rates.confusion, confusions or {})  # first: on clean words
    words = text.split(" ")
    words = delete_words(words, rng, rates.delete)
    words = swap_words(words, rng, rates.swap)
    words = repeat_words(words, rng, rates.repeat)
    words = insert_words(words, rng, rates.insert, fillers)
    words = typos(words, rng, rates.typo)
    words = casing_noise(words, rng, rates.casing)
    words = punctuation_noise(words, rng, rates.punctuation)
    return " ".join(words)


def synthetic_pairs(sentences: Sequence[str], rng: Random, rates: NoiseRates, *, count: int,
                    keep: float, confusions: Confusions | None = None,
                    fillers: Sequence[str] = ()) -> list[tuple[str, str]]:
    """`count` (source, target) pairs: targets are `sentences` in a shuffled order (again and
    again when `count` is larger), sources their corrupted copies, except for exactly
    round(keep * count) pairs whose source is the target unchanged.

    A sentence that low rates leave unchanged is corrupted again, up to a few times, so that the
    share of unchanged pairs is what `keep` says and not more (a sentence without anything noise
    can change, like "2024", may still stay unchanged).
    """
    if not sentences:
        raise ValueError("synthetic_pairs needs at least one sentence")
    if count < 0 or not 0.0 <= keep <= 1.0:
        raise ValueError(f"need count >= 0 and keep in [0, 1], got {count}, {keep}")
    targets: list[str] = []
    while len(targets) < count:
        order = list(sentences)
        rng.shuffle(order)
        targets.extend(order[:count - len(targets)])
    kept = set(rng.sample(range(count), round(keep * count)))
    pairs: list[tuple[str, str]] = []
    for index, target in enumerate(targets):
        source = target
        for _ in range(0 if index in kept else _TRIES):
            source = corrupt(target, rng, rates, confusions, fillers)
            if source != target:
                break
        pairs.append((source, target))
    return pairs


__all__ = [
    "MARKS",
    "TYPOS",
    "Confusions",
    "NoiseRates",
    "apply_confusions",
    "casing_noise",
    "corrupt",
    "delete_words",
    "double_char",
    "drop_char",
    "frequent_words",
    "insert_words",
    "keyboard_neighbours",
    "keyboard_typo",
    "learn_confusions",
    "punctuation_noise",
    "repeat_words",
    "swap_chars",
    "swap_words",
    "synthetic_pairs",
    "tokens",
    "typos",
]
