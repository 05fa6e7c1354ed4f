"""Code-switched text: a bilingual lexicon induced from parallel sentences, and text with spans of
its words replaced by their translations.

This module owns the lexicon (induction, the Lexicon value and its TSV file) and the switching.
Induction needs no external dictionary: it counts, over sentence pairs, in how many pairs each word
and each (source word, target word) occurs, scores a pair with the Dice coefficient
2·c(x,y) / (c(x) + c(y)), and keeps the pairs that are each other's best match. Switching follows
SwitchLingua (code-switched spans, not isolated words) and serves the code-switching restore
objective (CSR4mBART: the switched text is the source, the original text the target) and
augmentation.

Words are runs of letters (`str.isalpha`) between non-word characters: numbers, `3D` or `x_1` are
no words, and an apostrophe or hyphen separates two (`l'homme` holds `homme`). The lexicon is keyed
by the lower-case word; each entry keeps how the word and its translation are usually written away
from a sentence's start, so that a switched `dog` becomes `Hund`, not `hund`.

Every function is pure: `switch_text` reads only its arguments and draws only from the
`random.Random` it is passed; induction is deterministic (ties go to the alphabetically first
word).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from types import MappingProxyType

from polyseq.files import InputError, read_text_lines, write_atomic

SPAN = 0.5  # probability that a switched word's covered neighbour is switched too (at low rates)
_TOKEN_RE = re.compile(r"\w+")  # words and numbers; a word is a token of letters only
_LANG_RE = re.compile(r"\w+")  # language codes as the tokenizer takes them: en, zh_Hant
_COUNT_COLUMNS = ("count", "dice")


class LexiconError(InputError):
    """A lexicon file or value that cannot be used (the message says where and why)."""


@dataclass(frozen=True)
class Entry:
    """One word and its translation, each as usually written (`dog`, `Hund`)."""

    source: str
    target: str
    count: int = 0  # sentence pairs that hold both (0: not induced)
    score: float = 0.0  # their Dice coefficient


@dataclass(frozen=True)
class Lexicon:
    """Source-language words and their translations; look words up with `get` in any case."""

    src_lang: str
    tgt_lang: str
    entries: tuple[Entry, ...]
    _index: Mapping[str, Entry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", tuple(self.entries))
        for lang in (self.src_lang, self.tgt_lang):
            if not isinstance(lang, str) or not _LANG_RE.fullmatch(lang):
                raise LexiconError(f"invalid language code {lang!r}: use letters, digits or '_' (e.g. 'en')")
        index: dict[str, Entry] = {}
        for entry in self.entries:
            problem = _entry_problem(entry, index)
            if problem:
                raise LexiconError(f"lexicon entry {entry.source!r} -> {entry.target!r}: {problem}")
            index[entry.source.lower()] = entry
        object.__setattr__(self, "_index", MappingProxyType(index))

    @classmethod
    def from_pairs(cls, src_lang: str, tgt_lang: str, pairs: Mapping[str, str]) -> Lexicon:
        """A hand-made lexicon: {"dog": "Hund", ...}."""
        return cls(src_lang, tgt_lang, tuple(Entry(s, t) for s, t in pairs.items()))

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and word.lower() in self._index

    def get(self, word: str) -> Entry | None:
        return self._index.get(word.lower())

    @property
    def translations(self) -> dict[str, str]:
        """Lower-case word -> its translation."""
        return {word: entry.target for word, entry in self._index.items()}

    def save(self, path: str | Path) -> None:
        """Write a TSV file (atomically): a header `SRC<TAB>TGT<TAB>count<TAB>dice`, then one entry
        a line."""
        rows = ["\t".join((self.src_lang, self.tgt_lang, *_COUNT_COLUMNS))]
        rows += [f"{e.source}\t{e.target}\t{e.count}\t{e.score}" for e in self.entries]
        write_atomic(path, "\n".join(rows) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> Lexicon:
        """Read a TSV file written by `save`, or a hand-made one with only the two word columns
        (header `SRC<TAB>TGT`). Raises LexiconError naming the file and line."""
        lines = read_text_lines(path)
        if not lines:
            raise LexiconError(f"{path} is empty; a lexicon starts with a header line like 'en<TAB>de'")
        header = lines[0].split("\t")
        if len(header) not in (2, 4) or (len(header) == 4 and tuple(header[2:]) != _COUNT_COLUMNS):
            raise LexiconError(f"{path}, line 1: the header must be 'SRC<TAB>TGT' or "
                               f"'SRC<TAB>TGT<TAB>count<TAB>dice' (e.g. 'en<TAB>de'), found {lines[0]!r}")
        entries: list[Entry] = []
        index: dict[str, Entry] = {}
        for number, line in enumerate(lines[1:], start=2):
            entry = _read_entry(line, len(header), f"{path}, line {number}")
            problem = _entry_problem(entry, index)
            if problem:
                raise LexiconError(f"{path}, line {number}: {problem}")
            index[entry.source.lower()] = entry
            entries.append(entry)
        try:
            return cls(header[0], header[1], tuple(entries))
        except LexiconError as error:  # a bad language code in the header
            raise LexiconError(f"{path}, line 1: {error}") from None


def _entry_problem(entry: Entry, index: Mapping[str, Entry]) -> str:
    if not entry.source.isalpha():
        return "the source must be one word of letters (text is switched word by word)"
    if not entry.target or entry.target != entry.target.strip() or any(c in entry.target for c in "\t\n\r"):
        return "the translation must be non-empty, without a tab, line break or outer spaces"
    if entry.source.lower() in index:
        return f"{entry.source.lower()!r} is listed more than once"
    if entry.count < 0 or not 0.0 <= entry.score <= 1.0:
        return f"count must be >= 0 and dice in [0, 1], got {entry.count} and {entry.score}"
    return ""


def _read_entry(line: str, columns: int, where: str) -> Entry:
    fields = line.split("\t")
    if len(fields) != columns:
        found = "an empty line" if not line else f"{len(fields)} tab-separated columns"
        raise LexiconError(f"{where}: found {found}, expected {columns} like the header")
    if columns == 2:
        return Entry(fields[0], fields[1])
    try:
        return Entry(fields[0], fields[1], int(fields[2]), float(fields[3]))
    except ValueError:
        raise LexiconError(f"{where}: count must be a whole number and dice a number, found "
                           f"{fields[2]!r} and {fields[3]!r}") from None


# --------------------------------------------------------------------------- induction


def _words(text: str, min_length: int, forms: Counter[tuple[str, bool]]) -> set[str]:
    """The distinct lower-case words of `text`; counts each written form in `forms`, marked by
    whether it starts the sentence (where casing says little about the word)."""
    found: set[str] = set()
    first = True
    for token in _TOKEN_RE.findall(text):
        if token.isalpha() and len(token) >= min_length:
            forms[(token, first)] += 1
            found.add(token.lower())
        first = False
    return found


def _usual_forms(forms: Counter[tuple[str, bool]]) -> dict[str, str]:
    """Lower-case word -> its most frequent form away from a sentence's start (at the start if
    it never occurs elsewhere); ties go to the alphabetically first form."""
    usual: dict[str, str] = {}
    # forms away from a start first, each group most frequent first: the first form of a word wins
    for (form, _initial), _count in sorted(forms.items(), key=lambda kv: (kv[0][1], -kv[1], kv[0][0])):
        usual.setdefault(form.lower(), form)
    return usual


def induce_lexicon(pairs: Iterable[tuple[str, str]], src_lang: str, tgt_lang: str, *,
                   min_count: int = 3, min_score: float = 0.3, min_length: int = 2,
                   max_share: float = 0.5) -> Lexicon:
    """The pairs (x, y) of a source and a target word that are each other's best match by Dice
    coefficient over the sentence `pairs`, that occur together in `min_count` pairs or more,
    with a coefficient of `min_score` or more. Words shorter than `min_length` letters are left
    out, and so are pairs of a word and itself (switching them would change nothing).

    Counts are of sentence pairs, not of occurrences (each side's distinct words). Only words in
    `min_count` pairs or more are candidates (rarer ones cannot reach `min_count` together), and
    only words in at most `max_share` of the pairs: a word in most sentences (French `un`, in 76%
    of multi30k's) meets every frequent word of the other side by chance often enough to win its
    best match (`in` -> `un`, where `en` is right).
    """
    if min_count < 1 or not 0.0 <= min_score <= 1.0 or min_length < 1 or not 0.0 < max_share <= 1.0:
        raise ValueError(f"need min_count >= 1, min_score in [0, 1], min_length >= 1 and max_share in "
                         f"(0, 1], got {min_count}, {min_score}, {min_length}, {max_share}")
    src_forms: Counter[tuple[str, bool]] = Counter()
    tgt_forms: Counter[tuple[str, bool]] = Counter()
    sides = [(_words(s, min_length, src_forms), _words(t, min_length, tgt_forms)) for s, t in pairs]
    src_counts = Counter(word for words, _ in sides for word in words)
    tgt_counts = Counter(word for _, words in sides for word in words)
    most = max_share * len(sides)
    # words as ids in alphabetical order, so that a smaller id wins a tie
    src_words = sorted(word for word, count in src_counts.items() if min_count <= count <= most)
    tgt_words = sorted(word for word, count in tgt_counts.items() if min_count <= count <= most)
    src_id = {word: i for i, word in enumerate(src_words)}
    tgt_id = {word: i for i, word in enumerate(tgt_words)}
    width = len(tgt_words)
    joint: Counter[int] = Counter()  # src id * width + tgt id -> sentence pairs with both
    for src, tgt in sides:
        tgt_ids = [tgt_id[word] for word in tgt if word in tgt_id]
        joint.update([x + y for x in [src_id[w] * width for w in src if w in src_id] for y in tgt_ids])

    best_src: dict[int, tuple[float, int, int]] = {}  # src id -> (-dice, -count, tgt id), least best
    best_tgt: dict[int, tuple[float, int, int]] = {}
    for key, count in joint.items():
        if count < min_count:
            continue
        x, y = divmod(key, width)
        dice = 2 * count / (src_counts[src_words[x]] + tgt_counts[tgt_words[y]])
        if (-dice, -count, y) < best_src.get(x, (1.0, 0, 0)):
            best_src[x] = (-dice, -count, y)
        if (-dice, -count, x) < best_tgt.get(y, (1.0, 0, 0)):
            best_tgt[y] = (-dice, -count, x)

    src_usual, tgt_usual = _usual_forms(src_forms), _usual_forms(tgt_forms)
    entries = [Entry(src_usual[src_words[x]], tgt_usual[tgt_words[y]], -neg_count, round(-neg_dice, 4))
               for x, (neg_dice, neg_count, y) in best_src.items()
               if best_tgt[y][2] == x and -neg_dice >= min_score and src_words[x] != tgt_words[y]]
    entries.sort(key=lambda e: (-e.count, e.source.lower()))
    return Lexicon(src_lang, tgt_lang, tuple(entries))


def induce_from_corpus(spec: str | Path, src_lang: str, tgt_lang: str, languages: Sequence[str] = (),
                       *, min_count: int = 3, min_score: float = 0.3, min_length: int = 2,
                       max_share: float = 0.5) -> Lexicon:
    """`induce_lexicon` over the `src_lang`-`tgt_lang` pairs of a corpus spec (see
    polyseq.data.corpus.load_corpus); `languages` are the corpus's languages when a TSV or JSONL
    corpus holds more than these two. Raises CorpusError for bad input."""
    from polyseq.data.corpus import CorpusError, load_corpus

    if src_lang == tgt_lang:
        raise CorpusError(f"a lexicon needs two languages, got {src_lang}-{tgt_lang}")
    corpus = load_corpus(spec, tuple(languages) or (src_lang, tgt_lang), [(src_lang, tgt_lang)])
    return induce_lexicon(((p.src, p.tgt) for p in corpus), src_lang, tgt_lang, min_count=min_count,
                          min_score=min_score, min_length=min_length, max_share=max_share)


# --------------------------------------------------------------------------- switching


@dataclass(frozen=True)
class Switched:
    """A code-switched text and what was switched."""

    text: str
    switched: int  # words replaced by their translation
    covered: int  # words the lexicon has
    words: int  # all words


def _in_case_of(word: str, entry: Entry) -> str:
    """The translation in the case `word` has relative to how its language usually writes it."""
    if word == entry.source:
        return entry.target
    if len(word) > 1 and word.isupper():
        return entry.target.upper()
    if word[0].isupper():
        return entry.target[0].upper() + entry.target[1:]
    if word.islower():
        return entry.target.lower()
    return entry.target


def switch_text(text: str, lexicon: Lexicon, rng: Random, rate: float, span: float = SPAN) -> Switched:
    """`text` with words the lexicon covers replaced by their translations, in contiguous spans:
    each covered word is switched with probability `rate`, and a word right after a switched one
    (no uncovered word or number between them) with probability `span` or more, so that spans
    form and the share of switched words stays `rate`. Spacing, punctuation and anything else but
    the switched words are kept exactly; a switched word keeps its case (Dog -> Hund, DOG -> HUND).
    """
    if not 0.0 <= rate <= 1.0 or not 0.0 <= span <= 1.0:
        raise ValueError(f"rate and span must be in [0, 1], got {rate} and {span}")
    # A Markov chain over a run of covered words: its first word switches with probability
    # `rate`; then `keep` after a switch and `start` after none, chosen so that every word's
    # probability stays `rate`: rate = rate * keep + (1 - rate) * start (start <= rate as keep >= rate).
    keep = max(span, rate)
    start = rate * (1.0 - keep) / (1.0 - rate) if rate < 1.0 else 1.0
    pieces: list[str] = []
    end = switched = covered = words = 0
    previous: bool | None = None  # the last covered word of this run was switched; None: a new run
    for match in _TOKEN_RE.finditer(text):
        word = match.group()
        entry = lexicon.get(word) if word.isalpha() else None
        words += word.isalpha()
        if entry is None:
            previous = None
            continue
        covered += 1
        previous = rate > 0.0 and rng.random() < (rate if previous is None else keep if previous else start)
        if previous:
            pieces += [text[end:match.start()], _in_case_of(word, entry)]
            end = match.end()
            switched += 1
    pieces.append(text[end:])
    return Switched("".join(pieces), switched, covered, words)


def code_switch(text: str, lexicon: Lexicon, rng: Random, rate: float, span: float = SPAN) -> str:
    """`text` code-switched: see `switch_text`."""
    return switch_text(text, lexicon, rng, rate, span).text


__all__ = [
    "SPAN",
    "Entry",
    "Lexicon",
    "LexiconError",
    "Switched",
    "code_switch",
    "induce_from_corpus",
    "induce_lexicon",
    "switch_text",
]
