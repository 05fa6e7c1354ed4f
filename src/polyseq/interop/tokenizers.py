"""Tokenizers of imported Hugging Face models behind polyseq's tokenizer interface.

What polyseq's Translator needs from a tokenizer is small (`polyseq.text.framing.TextTokenizer`):
`encode` a source text to bare ids, `decode` output ids to text, the `languages` it knows, and a
`Framing` per direction: the ids put around a source sentence and the forced start of the decoder.
polyseq's own Tokenizer frames with `<2tgt>`; the imported families each frame their own way:

    family     source                     decoder prefix
    polyseq    <2tgt> text </s>           <2tgt>
    marian     [>>tgt<<] text </s>        <pad>            (>>tgt<< only in multi-target models)
    m2m_100    __src__ text </s>          </s> __tgt__     (also NLLB, mBART-50)
    nllb       src_Code text </s>         </s> tgt_Code    (legacy_behaviour: text </s> src_Code)
    mbart      text </s> src_XX           tgt_XX           (mBART-25)

Marian and M2M-100 tokenize with SentencePiece and map pieces through vocab.json (as transformers
does); NLLB and mBART are read from their tokenizer.json with the `tokenizers` library. No
transformers import is needed to use an imported model.
"""

from __future__ import annotations

import abc
import enum
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sentencepiece as spm

from polyseq.text.framing import Framing
from polyseq.text.tokenizer import Tokenizer, TokenizerError, UnknownLanguageError


class TokenizerKind(str, enum.Enum):
    POLYSEQ = "polyseq"
    MARIAN = "marian"
    M2M_100 = "m2m_100"
    NLLB = "nllb"
    NLLB_LEGACY = "nllb_legacy"
    MBART = "mbart"


@dataclass(frozen=True)
class Specials:
    pad_id: int
    eos_id: int
    unk_id: int
    decoder_start_id: int


class ImportedTokenizer(abc.ABC):
    """Base of the imported tokenizers: language codes, special ids and the framing rules."""

    def __init__(self, kind: TokenizerKind, specials: Specials, lang_ids: dict[str, int],
                 fixed_languages: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.specials = specials
        self._lang_ids = dict(lang_ids)
        # a bilingual Marian model has no language tokens, only the pair it was trained for
        self._fixed = fixed_languages
        # what transformers' decode(skip_special_tokens=True) leaves out (<unk> prints as "⁇" else)
        self._skip = frozenset({specials.pad_id, specials.eos_id, specials.unk_id, *lang_ids.values()})

    @property
    def pad_id(self) -> int:
        return self.specials.pad_id

    @property
    def eos_id(self) -> int:
        return self.specials.eos_id

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self._lang_ids) or self._fixed

    def lang_id(self, lang: str) -> int:
        if lang not in self._lang_ids:
            raise UnknownLanguageError(f"this {self.kind.value} tokenizer has no language {lang!r}; "
                                       f"known: {', '.join(self.languages) or 'none'}")
        return self._lang_ids[lang]

    def check_language(self, lang: str) -> None:
        if lang not in self.languages:
            self.lang_id(lang)  # raises, naming the known languages

    def decoder_prefix(self, tgt_lang: str) -> tuple[int, ...]:
        """The forced start of the decoder for output in `tgt_lang`."""
        start = self.specials.decoder_start_id
        if self.kind is TokenizerKind.MARIAN:
            self.check_language(tgt_lang)
            return (start,)
        if self.kind is TokenizerKind.MBART:
            return (self.lang_id(tgt_lang),)  # mBART-25 starts with the language code itself
        return (start, self.lang_id(tgt_lang))  # M2M-100, NLLB, mBART-50

    def framing(self, src_lang: str | None, tgt_lang: str) -> Framing:
        eos, prefix = self.eos_id, self.decoder_prefix(tgt_lang)
        if self.kind is TokenizerKind.MARIAN:  # multi-target models name the target in the source
            head = (self.lang_id(tgt_lang),) if self._lang_ids else ()
            if not self._lang_ids and len(self._fixed) == 2:
                self._check_pair(src_lang, tgt_lang)
            return Framing(head, (eos,), prefix, eos)
        if src_lang is None:
            raise UnknownLanguageError(f"a {self.kind.value} model needs the source language (src_lang)")
        src = self.lang_id(src_lang)
        if self.kind in (TokenizerKind.MBART, TokenizerKind.NLLB_LEGACY):
            return Framing((), (eos, src), prefix, eos)
        return Framing((src,), (eos,), prefix, eos)

    def _check_pair(self, src_lang: str | None, tgt_lang: str) -> None:
        """A bilingual Marian model translates its one direction: any other would silently come
        out in its target language."""
        source, target = self._fixed
        if tgt_lang != target or src_lang not in (None, source):
            asked = f"{src_lang} -> {tgt_lang}" if src_lang else f"into {tgt_lang}"
            raise UnknownLanguageError(f"this Marian model translates {source} -> {target} only, not {asked}")

    def source_ids(self, text: str, tgt_lang: str, src_lang: str | None = None) -> list[int]:
        return self.framing(src_lang, tgt_lang).source(self.encode(text))

    @property
    @abc.abstractmethod
    def vocab_size(self) -> int: ...

    @abc.abstractmethod
    def encode(self, text: str) -> list[int]:
        """Source text -> ids, without framing."""

    @abc.abstractmethod
    def encode_target(self, text: str) -> list[int]:
        """Target text -> ids, without framing (Marian has a target SentencePiece model)."""

    @abc.abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Output ids -> text, without special ids and language codes."""

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        return [self.decode(ids) for ids in batch]


class VocabSentencePieceTokenizer(ImportedTokenizer):
    """SentencePiece pieces mapped to model ids by vocab.json: Marian (separate source and target
    SentencePiece models, one vocabulary) and M2M-100 (one of each, language ids after the vocab)."""

    def __init__(self, kind: TokenizerKind, source_spm: Path, target_spm: Path, vocab: dict[str, int],
                 specials: Specials, lang_ids: dict[str, int], fixed_languages: tuple[str, ...] = ()):
        super().__init__(kind, specials, lang_ids, fixed_languages)
        self._source = spm.SentencePieceProcessor(model_file=str(source_spm))
        self._target = spm.SentencePieceProcessor(model_file=str(target_spm))
        self._vocab = vocab
        self._pieces = {i: piece for piece, i in vocab.items()}
        self._size = max([*vocab.values(), *lang_ids.values()]) + 1
        if kind is TokenizerKind.M2M_100 and "<s>" in vocab:  # M2M-100's bos, special to transformers
            self._skip |= {vocab["<s>"]}

    @property
    def vocab_size(self) -> int:
        return self._size

    def _ids(self, pieces: list[str]) -> list[int]:
        unk = self.specials.unk_id
        return [self._vocab.get(piece, unk) for piece in pieces]

    def encode(self, text: str) -> list[int]:
        return self._ids(self._source.encode(text, out_type=str))

    def encode_target(self, text: str) -> list[int]:
        return self._ids(self._target.encode(text, out_type=str))

    def decode(self, ids: Sequence[int]) -> str:
        pieces = [self._pieces.get(int(i), "<unk>") for i in ids if int(i) not in self._skip]
        # as transformers does: the source model joins the pieces (the vocabulary is shared), and
        # a "▁" it does not know as a piece boundary still means a space
        return self._source.decode_pieces(pieces).replace("\u2581", " ").strip()


class JsonTokenizer(ImportedTokenizer):
    """A tokenizer.json (the `tokenizers` library): NLLB and mBART checkpoints ship one."""

    def __init__(self, kind: TokenizerKind, path: Path, specials: Specials, lang_ids: dict[str, int]):
        from tokenizers import Tokenizer as RustTokenizer

        super().__init__(kind, specials, lang_ids)
        self._tokenizer = RustTokenizer.from_file(str(path))
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()

    @property
    def vocab_size(self) -> int:
        return int(self._tokenizer.get_vocab_size(with_added_tokens=True))

    def encode(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def encode_target(self, text: str) -> list[int]:
        return self.encode(text)  # one model for both sides

    def decode(self, ids: Sequence[int]) -> str:
        kept = [int(i) for i in ids if int(i) not in self._skip]
        return str(self._tokenizer.decode(kept, skip_special_tokens=True)).strip()


# ------------------------------------------------------------------------------------- import, load

MARIAN_FILES = ("source.spm", "target.spm", "vocab.json")
M2M_FILES = ("sentencepiece.bpe.model", "vocab.json")
JSON_FILES = ("tokenizer.json",)
FILES = {TokenizerKind.MARIAN: MARIAN_FILES, TokenizerKind.M2M_100: M2M_FILES,
         TokenizerKind.NLLB: JSON_FILES, TokenizerKind.NLLB_LEGACY: JSON_FILES,
         TokenizerKind.MBART: JSON_FILES}
_M2M_CODE = re.compile(r"__([A-Za-z0-9_]+)__")
_MARIAN_CODE = re.compile(r">>([A-Za-z0-9_]+)<<")
_NLLB_CODE = re.compile(r"[a-z]{3}_[A-Z][a-z]{3}")
_MBART_CODE = re.compile(r"[a-z]{2}_[A-Z]{2}")


def _read_json(path: Path) -> Any:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TokenizerError(f"{path} is not valid JSON: {error}") from None


def _require(directory: Path, names: Sequence[str], what: str) -> None:
    missing = [name for name in names if not (directory / name).is_file()]
    if missing:
        raise TokenizerError(f"{directory}: the {what} tokenizer needs {', '.join(missing)}")


def describe_hf_tokenizer(directory: Path, model_type: str, hf: dict[str, Any]) -> dict[str, Any]:
    """The tokenizer description stored in an imported model's metadata: kind, special and
    language ids. Read from the HF directory's files, never fetched."""
    settings = _read_json(directory / "tokenizer_config.json")
    start = hf.get("decoder_start_token_id")
    start = int(start if start is not None else hf.get("eos_token_id", 2))
    specials = {"pad_id": int(hf.get("pad_token_id", 1)), "eos_id": int(hf.get("eos_token_id", 2)),
                "decoder_start_id": start}
    if model_type == "marian":
        return _describe_marian(directory, settings, specials)
    if (directory / "tokenizer.json").is_file():
        return _describe_json(directory, settings, specials, model_type)
    if model_type == "m2m_100":
        return _describe_m2m(directory, settings, specials)
    raise TokenizerError(f"{directory}: no tokenizer.json for this {model_type} model; save it with a "
                         "recent transformers (tokenizer.save_pretrained) and convert again, or import "
                         "the weights alone (polyseq convert --no-tokenizer)")


def _describe_marian(directory: Path, settings: dict[str, Any], specials: dict[str, int]) -> dict[str, Any]:
    _require(directory, MARIAN_FILES, "Marian")
    if settings.get("separate_vocabs"):
        raise TokenizerError(f"{directory}: Marian models with separate vocabularies are not supported")
    vocab = _read_json(directory / "vocab.json")
    codes = {m.group(1): i for piece, i in vocab.items() if (m := _MARIAN_CODE.fullmatch(piece))}
    pair = tuple(str(settings[key]) for key in ("source_lang", "target_lang") if settings.get(key))
    return {"kind": TokenizerKind.MARIAN.value, **specials, "unk_id": int(vocab.get("<unk>", 1)),
            "languages": codes, "pair": list(pair), "files": list(MARIAN_FILES)}


def _describe_m2m(directory: Path, settings: dict[str, Any], specials: dict[str, int]) -> dict[str, Any]:
    _require(directory, M2M_FILES, "M2M-100")
    vocab = _read_json(directory / "vocab.json")
    tokens = settings.get("extra_special_tokens") or settings.get("additional_special_tokens") or []
    codes = [m.group(1) for token in tokens if (m := _M2M_CODE.fullmatch(str(token)))]
    if not codes:  # older files list no codes: take transformers' list when it is installed
        try:
            from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES
        except ImportError:
            raise TokenizerError(f"{directory}/tokenizer_config.json lists no __xx__ language tokens") \
                from None
        codes = list(FAIRSEQ_LANGUAGE_CODES[settings.get("language_codes", "m2m100")])
    languages = {code: len(vocab) + index for index, code in enumerate(codes)}  # as transformers does
    return {"kind": TokenizerKind.M2M_100.value, **specials, "unk_id": int(vocab.get("<unk>", 3)),
            "languages": languages, "files": list(M2M_FILES)}


def _describe_json(directory: Path, settings: dict[str, Any], specials: dict[str, int],
                   model_type: str) -> dict[str, Any]:
    data = _read_json(directory / "tokenizer.json")
    added = {str(t["content"]): int(t["id"]) for t in data.get("added_tokens", [])}
    vocab = data.get("model", {}).get("vocab", {})
    lookup = {**(vocab if isinstance(vocab, dict) else {}), **added}
    pattern = _MBART_CODE if model_type == "mbart" else _NLLB_CODE
    languages = {token: i for token, i in added.items() if pattern.fullmatch(token)}
    if model_type == "m2m_100":  # an M2M-100 saved with a tokenizer.json
        languages = {m.group(1): i for token, i in added.items() if (m := _M2M_CODE.fullmatch(token))}
        kind = TokenizerKind.M2M_100 if languages else TokenizerKind.NLLB
        if kind is TokenizerKind.NLLB:
            languages = {token: i for token, i in added.items() if _NLLB_CODE.fullmatch(token)}
            if settings.get("legacy_behaviour"):
                kind = TokenizerKind.NLLB_LEGACY
    elif model_type == "mbart":
        # mBART-50 frames like M2M-100; mBART-25 puts the language after </s>
        fifty = "50" in str(settings.get("tokenizer_class", ""))
        kind = TokenizerKind.M2M_100 if fifty else TokenizerKind.MBART
    else:
        raise TokenizerError(f"{directory}: polyseq reads the tokenizers of translation models (Marian, "
                             f"M2M-100, NLLB, mBART), not of {model_type!r}; import the weights alone "
                             "(polyseq convert --no-tokenizer, or import_hf(..., with_tokenizer=False))")
    if not languages:
        raise TokenizerError(f"{directory}/tokenizer.json has no language code tokens")
    return {"kind": kind.value, **specials, "unk_id": int(lookup.get("<unk>", 3)),
            "languages": languages, "files": list(JSON_FILES)}


def tokenizer_from_description(directory: Path, info: dict[str, Any]) -> ImportedTokenizer:
    kind = TokenizerKind(info["kind"])
    specials = Specials(int(info["pad_id"]), int(info["eos_id"]), int(info["unk_id"]),
                        int(info["decoder_start_id"]))
    languages = {str(k): int(v) for k, v in info.get("languages", {}).items()}
    # the files the description names: mBART-50 and some M2M-100 frame as M2M-100 from a tokenizer.json
    _require(directory, info.get("files") or FILES[kind], kind.value)
    if kind is TokenizerKind.MARIAN:
        vocab = _read_json(directory / "vocab.json")
        return VocabSentencePieceTokenizer(kind, directory / "source.spm", directory / "target.spm", vocab,
                                           specials, languages, tuple(info.get("pair", ())))
    if kind is TokenizerKind.M2M_100 and (directory / "vocab.json").is_file():
        model = directory / "sentencepiece.bpe.model"
        return VocabSentencePieceTokenizer(kind, model, model, _read_json(directory / "vocab.json"),
                                           specials, languages)
    return JsonTokenizer(kind, directory / "tokenizer.json", specials, languages)


def load_tokenizer(directory: str | Path) -> Tokenizer | ImportedTokenizer:
    """The tokenizer of a polyseq model directory: polyseq's own, or the imported family's."""
    directory = Path(directory)
    metadata = _read_json(directory / "metadata.json")
    info = metadata.get("tokenizer") if isinstance(metadata, dict) else None
    if not info or info.get("kind") == TokenizerKind.POLYSEQ.value:
        return Tokenizer.load(directory)
    if info.get("kind") == "none":
        raise TokenizerError(f"{directory} was imported without its tokenizer; convert it again from a "
                             "directory that has the tokenizer files, or use the model with token ids")
    return tokenizer_from_description(directory, info)
