"""SentencePiece subwords shared by all languages, with `<2xx>` language tags and fixed special ids.

The tokenizer is lossless: `decode(encode(text)) == text` for every string of valid Unicode,
including repeated, leading and trailing spaces, tabs, newlines, emoji and `▁` (U+2581, which
SentencePiece uses internally for spaces; we encode a literal one as its UTF-8 byte pieces).
That holds because training uses the identity normalization, keeps whitespace as it is, adds no
dummy prefix and falls back to byte pieces for characters outside the vocabulary.

Language tags are control symbols rather than user-defined symbols: a user-defined `<2en>` would be
matched inside ordinary text, so a sentence that mentions "<2en>" would turn into a tag and lose
those characters on decode. Control symbols are reachable only by id, never from text.

The model file alone describes the tokenizer: the languages are read back from its `<2xx>` pieces.
"""

from __future__ import annotations

import difflib
import io
import logging
import random
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import sentencepiece as spm

from polyseq.files import write_atomic
from polyseq.text.framing import Framing

logger = logging.getLogger(__name__)

MODEL_FILE = "tokenizer.model"
_LANG_CODE = re.compile(r"[A-Za-z0-9_]+")
_TAG = re.compile(r"<2([A-Za-z0-9_-]+)>")
# SentencePiece's batch calls start threads: below this many texts one call per text is faster
# (a single sentence: 0.13 ms against 0.006 ms on a 2-core machine)
_THREADED_FROM = 64
_META = "\u2581"  # SentencePiece's whitespace symbol; decodes to " " unless given as bytes
_BYTE_PIECES = 256
_TOO_HIGH = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")
_TOO_FEW_CHARS = re.compile(r"Vocabulary size is smaller than required_chars\. (\d+) vs (\d+)")


class TokenizerError(ValueError):
    """A tokenizer file is missing or corrupt, or the tokenizer was asked something it cannot do."""


class UnknownLanguageError(TokenizerError):
    """A language code that the tokenizer has no `<2xx>` tag for."""


def language_tag(lang: str) -> str:
    """The piece that marks a language: `<2en>` for "en"."""
    return f"<2{lang}>"


def _check_languages(languages: Sequence[str]) -> tuple[str, ...]:
    if isinstance(languages, str):
        raise TokenizerError(f"languages must be a sequence of codes, not the string {languages!r}")
    codes = tuple(languages)
    if not codes:
        raise TokenizerError("a tokenizer needs at least one language (e.g. languages=['en'])")
    for code in codes:
        if not isinstance(code, str) or not _LANG_CODE.fullmatch(code):
            raise TokenizerError(
                f"invalid language code {code!r}: use letters, digits or '_' (e.g. 'en', "
                "'zh_Hant'); '-' separates the languages of a direction"
            )
    duplicates = sorted({code for code in codes if codes.count(code) > 1})
    if duplicates:
        raise TokenizerError(f"languages listed more than once: {', '.join(duplicates)}")
    return codes


def _close_language(lang: str, known: tuple[str, ...]) -> str | None:
    """The known code that `lang` probably means: the same in another case or with '-' for '_'
    ("EN", "zh-hant"), its language part ("de_DE", "en-US"), or a close spelling ("dee")."""
    folded = {code.lower(): code for code in known}
    key = lang.lower().replace("-", "_")
    for candidate in (key, key.split("_")[0]):
        if candidate in folded:
            return folded[candidate]
    close = difflib.get_close_matches(lang, list(known), n=1)
    return close[0] if close else None


def _sample(texts: Iterable[str], limit: int, seed: int) -> list[str]:
    """Up to `limit` texts, a uniform seeded sample when there are more (reservoir sampling)."""
    rng = random.Random(f"polyseq-tokenizer:{seed}")
    sample: list[str] = []
    seen = 0
    for text in texts:
        if not isinstance(text, str):
            raise TokenizerError(f"training text {seen} is a {type(text).__name__}, expected str")
        if seen < limit:
            sample.append(text)
        else:
            j = rng.randrange(seen + 1)
            if j < limit:
                sample[j] = text
        seen += 1
    if seen > limit:
        logger.info("tokenizer: training on a sample of %d of %d sentences", limit, seen)
    return sample


class Tokenizer:
    """A trained SentencePiece model plus the polyseq conventions around it."""

    pad_id: ClassVar[int] = 0
    unk_id: ClassVar[int] = 1
    bos_id: ClassVar[int] = 2
    eos_id: ClassVar[int] = 3
    FILES: ClassVar[tuple[str, ...]] = (MODEL_FILE,)

    def __init__(self, model_proto: bytes, *, source: str = "<memory>") -> None:
        """Load from a serialized SentencePiece model; `source` names it in error messages."""
        processor = spm.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(model_proto)
        except (RuntimeError, OSError) as error:
            raise TokenizerError(
                f"{source} is not a valid SentencePiece model ({error}); train the tokenizer "
                "again or restore the file from a backup"
            ) from None
        self._sp = processor
        self._proto = bytes(model_proto)
        self._check_specials(source)
        tags = {}
        for i in range(processor.get_piece_size()):
            match = _TAG.fullmatch(processor.id_to_piece(i))
            if match and processor.is_control(i):
                tags[match.group(1)] = i
        if not tags:
            raise TokenizerError(
                f"{source} has no <2xx> language tags; train it with Tokenizer.train"
            )
        self._lang_ids = tags
        self._langs_by_id = {i: lang for lang, i in tags.items()}
        self._skip = frozenset({self.pad_id, self.bos_id, self.eos_id, *tags.values()})
        self._ints = list(range(processor.get_piece_size()))
        self._meta_bytes = [processor.piece_to_id(f"<0x{b:02X}>") for b in _META.encode()]

    def _check_specials(self, source: str) -> None:
        sp = self._sp
        found = (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id())
        wanted = (self.pad_id, self.unk_id, self.bos_id, self.eos_id)
        if found != wanted:
            raise TokenizerError(
                f"{source} has special ids pad/unk/bos/eos = {found}, polyseq needs {wanted}; "
                "train it with Tokenizer.train"
            )
        if not sp.is_byte(sp.piece_to_id("<0x00>")):
            raise TokenizerError(f"{source} was trained without byte_fallback; retrain it")

    # ----------------------------------------------------------------------------- training, files

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        directory: str | Path,
        *,
        vocab_size: int,
        languages: Sequence[str],
        max_sentences: int = 2_000_000,
        seed: int = 1,
        character_coverage: float = 1.0,
        num_threads: int = 1,
    ) -> Tokenizer:
        """Train on `texts`, write `directory/tokenizer.model` and return the tokenizer.

        Deterministic for the same texts, seed and num_threads (SentencePiece's EM sums per-thread
        counts, so a different thread count can give a slightly different model). When the text
        cannot fill `vocab_size` pieces, the largest vocabulary it supports is used, with a warning.
        """
        langs = _check_languages(languages)
        minimum = 4 + len(langs) + _BYTE_PIECES + 1
        if vocab_size < minimum:
            raise TokenizerError(
                f"vocab_size {vocab_size} is too small: {4 + len(langs)} special and language "
                f"pieces plus {_BYTE_PIECES} byte pieces need at least {minimum}"
            )
        if max_sentences < 1 or not 0.0 < character_coverage <= 1.0:
            raise TokenizerError("max_sentences must be >= 1 and character_coverage in (0, 1]")
        proto = cls._train_proto(texts, langs, vocab_size, max_sentences, seed,
                                 character_coverage, num_threads)
        tokenizer = cls(proto, source="the trained tokenizer")
        tokenizer.save(directory)
        return tokenizer

    @classmethod
    def _train_proto(
        cls,
        texts: Iterable[str],
        langs: tuple[str, ...],
        vocab_size: int,
        max_sentences: int,
        seed: int,
        character_coverage: float,
        num_threads: int,
    ) -> bytes:
        sentences = _sample(texts, max_sentences, seed)  # in memory, so a retry sees the same
        if not any(sentences):
            raise TokenizerError("no training text: the texts given to Tokenizer.train are empty")
        options = dict(
            vocab_size=vocab_size, pad_id=cls.pad_id, unk_id=cls.unk_id, bos_id=cls.bos_id,
            eos_id=cls.eos_id, control_symbols=[language_tag(lang) for lang in langs],
            byte_fallback=True, normalization_rule_name="identity",
            remove_extra_whitespaces=False, add_dummy_prefix=False, split_digits=False,
            character_coverage=character_coverage, input_sentence_size=0,
            max_sentence_length=1 << 20, num_threads=num_threads,
            minloglevel=2,
        )
        try:
            return _run_trainer(sentences, seed, options)
        except RuntimeError as error:
            message = str(error)
        if match := _TOO_FEW_CHARS.search(message):
            raise TokenizerError(
                f"vocab_size {vocab_size} is too small for this text: it needs at least "
                f"{match.group(2)} pieces for its characters and special pieces; raise vocab_size "
                "(data.vocab_size) or lower character_coverage (data.character_coverage, 0.9995 for "
                "Chinese or Japanese)"
            ) from None
        if match := _TOO_HIGH.search(message):
            logger.warning(
                "vocab_size %d is more than this text supports (at most %s pieces); training "
                "with the largest vocabulary it supports", vocab_size, match.group(2),
            )
            return _run_trainer(sentences, seed, {**options, "hard_vocab_limit": False})
        raise TokenizerError(f"SentencePiece training failed: {message}") from None

    @classmethod
    def load(cls, directory: str | Path) -> Tokenizer:
        """Read `directory/tokenizer.model`; TokenizerError naming it when missing or corrupt."""
        directory = Path(directory)
        if directory.is_file():
            raise TokenizerError(
                f"{directory} is a file; pass the directory that holds {MODEL_FILE}"
            )
        path = directory / MODEL_FILE
        if not path.is_file():
            raise TokenizerError(
                f"{path} does not exist; train a tokenizer first or point to a model directory"
            )
        return cls(path.read_bytes(), source=str(path))

    def save(self, directory: str | Path) -> Path:
        """Write `directory/tokenizer.model` atomically (temporary file, then rename)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / MODEL_FILE
        write_atomic(path, self._proto)
        return path

    # ----------------------------------------------------------------------------- vocabulary

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages with a tag, in vocabulary order."""
        return tuple(self._lang_ids)

    def lang_id(self, lang: str) -> int:
        """The id of `<2lang>`; UnknownLanguageError with a suggestion when there is none."""
        try:
            return self._lang_ids[lang]
        except (KeyError, TypeError):
            known = ", ".join(self._lang_ids)
            close = _close_language(str(lang), tuple(self._lang_ids))
            hint = f"did you mean {close!r}? " if close else ""
            raise UnknownLanguageError(
                f"the tokenizer has no language {lang!r}; {hint}known languages: {known}"
            ) from None

    def lang_of_id(self, token_id: int) -> str | None:
        """The language whose tag is `token_id`, or None when it is not a language tag."""
        return self._langs_by_id.get(token_id)

    def is_special(self, token_id: int) -> bool:
        """True for pad, unk, bos, eos and language tags."""
        return token_id in self._skip or token_id == self.unk_id

    def decoder_start_id(self, tgt_lang: str) -> int:
        return self.lang_id(tgt_lang)

    def piece(self, token_id: int) -> str:
        self._check_ids([token_id])
        return self._sp.id_to_piece(token_id)

    # ----------------------------------------------------------------------------- encode, decode

    def encode(self, text: str) -> list[int]:
        return self._encode([text], (), ())[0]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Encode many texts at once (SentencePiece's threaded batch encoder)."""
        return self._encode(texts, (), ())

    def _encode(
        self, texts: Sequence[str], head: tuple[int, ...], tail: tuple[int, ...]
    ) -> list[list[int]]:
        """head + ids + tail per text; equal ids share one int object (keeps corpora small)."""
        if isinstance(texts, str):
            raise TokenizerError("expected a sequence of texts, got one str; use encode for one")
        texts = list(texts)
        try:
            if len(texts) >= _THREADED_FROM:
                encoded = self._sp.encode(texts, out_type=int)
            else:
                encoded = [self._sp.encode(text, out_type=int) for text in texts]
        except (RuntimeError, TypeError, UnicodeError):
            _explain_bad_text(texts)
            raise
        for i in [i for i, text in enumerate(texts) if _META in text]:
            encoded[i] = self._encode_with_meta(texts[i])
        intern = self._ints.__getitem__
        return [[*head, *map(intern, ids), *tail] for ids in encoded]

    def _encode_with_meta(self, text: str) -> list[int]:
        """Encode a text holding a literal "▁" (which SentencePiece would decode as a space)."""
        ids: list[int] = []
        for k, part_ids in enumerate(self._sp.encode(text.split(_META), out_type=int)):
            ids += (self._meta_bytes if k else []) + part_ids  # "▁" as its three byte pieces
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text for `ids`, skipping pad, bos, eos and language tags."""
        return self.decode_batch([ids])[0]

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        kept = []
        for ids in batch:
            ids = [int(i) for i in ids]
            self._check_ids(ids)
            kept.append([i for i in ids if i not in self._skip])
        if len(kept) >= _THREADED_FROM:
            return self._sp.decode(kept)
        return [self._sp.decode(ids) for ids in kept]

    def encode_target(self, text: str) -> list[int]:
        """Target text -> ids: one vocabulary and one model for both sides."""
        return self.encode(text)

    def _check_ids(self, ids: Sequence[int]) -> None:
        size = self.vocab_size
        bad = [i for i in ids if not 0 <= i < size]
        if bad:
            raise TokenizerError(f"token id {bad[0]} is outside the vocabulary (0..{size - 1})")

    # ----------------------------------------------------------------------------- model inputs

    def framing(self, src_lang: str | None, tgt_lang: str) -> Framing:
        """`<2tgt> text </s>`, the decoder starting at `<2tgt>`. The source language is not in it,
        but must be one the tokenizer knows."""
        if src_lang is not None:
            self.lang_id(src_lang)  # raises UnknownLanguageError naming the known languages
        tag = self.lang_id(tgt_lang)
        return Framing((tag,), (self.eos_id,), (tag,), self.eos_id)

    def source_ids(self, text: str, tgt_lang: str) -> list[int]:
        """Encoder input: `<2tgt>` + text + eos (the tag says which language to produce)."""
        return self.source_ids_batch([text], tgt_lang)[0]

    def target_ids(self, text: str, tgt_lang: str) -> list[int]:
        """`<2tgt>` + text + eos; the decoder input is ids[:-1], the labels ids[1:]."""
        return self.target_ids_batch([text], tgt_lang)[0]

    def source_ids_batch(self, texts: Sequence[str], tgt_lang: str) -> list[list[int]]:
        """`source_ids` for many texts of one direction at once."""
        return self._framed(texts, tgt_lang)

    def target_ids_batch(self, texts: Sequence[str], tgt_lang: str) -> list[list[int]]:
        """`target_ids` for many texts of one language at once."""
        return self._framed(texts, tgt_lang)

    def _framed(self, texts: Sequence[str], tgt_lang: str) -> list[list[int]]:
        return self._encode(texts, (self.lang_id(tgt_lang),), (self.eos_id,))

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, languages={self.languages})"


def _explain_bad_text(texts: Sequence[str]) -> None:
    """Raise a TokenizerError for the first text that is not a str of valid Unicode, if any."""
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TokenizerError(f"text {i} is a {type(text).__name__}, expected str")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise TokenizerError(
                f"text {i} is not valid Unicode ({error.reason} at character {error.start}); "
                "read files as UTF-8 with errors='strict'"
            ) from None


def _run_trainer(sentences: list[str], seed: int, options: dict[str, Any]) -> bytes:
    spm.set_random_generator_seed(seed)
    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=writer,
                                   **options)
    return writer.getvalue()
