"""SentencePiece models and the tokenizer files of Marian and M2M-100, built from a few sentences
(nothing is downloaded), for the interop tests."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import sentencepiece as spm
from hf_models import LAYERS, transformers

EN = "the a cat dog house small big red blue green runs walks sees eats and or with to in on"
EN_WORDS = EN.split()
DE = "der die das ein Hund Katze Haus klein gross rot blau gruen sieht isst und oder mit zu in"
DE_WORDS = DE.split()
TEXTS = ["the small cat sees a red dog", "big blue house and green cat", "a dog walks to the house"]


def sentences(words: list[str], seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))) for _ in range(400)]


def train_spm(path: Path, words: list[str], seed: int, model_type: str = "unigram", size: int = 60) -> None:
    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences(words, seed)), model_writer=writer,
                                   vocab_size=size, model_type=model_type, minloglevel=2,
                                   hard_vocab_limit=False)
    path.write_bytes(writer.getvalue())


def pieces(path: Path) -> list[str]:
    processor = spm.SentencePieceProcessor(model_file=str(path))
    return [processor.id_to_piece(i) for i in range(3, processor.get_piece_size())]


def marian_dir(directory: Path, codes: tuple[str, ...] = ()) -> Path:
    directory.mkdir()
    train_spm(directory / "source.spm", EN_WORDS, 1)
    train_spm(directory / "target.spm", DE_WORDS, 2)
    vocab = {"</s>": 0, "<unk>": 1, **{f">>{c}<<": 2 + i for i, c in enumerate(codes)}}
    for piece in pieces(directory / "source.spm") + pieces(directory / "target.spm"):
        vocab.setdefault(piece, len(vocab))
    vocab["<pad>"] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    files = [str(directory / name) for name in ("source.spm", "target.spm", "vocab.json")]
    tokenizer = transformers.MarianTokenizer(*files, source_lang="en", target_lang="de")
    tokenizer.save_pretrained(directory)
    return directory


def m2m_dir(directory: Path) -> Path:
    directory.mkdir()
    train_spm(directory / "sentencepiece.bpe.model", EN_WORDS + DE_WORDS, 3)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for piece in pieces(directory / "sentencepiece.bpe.model"):
        vocab.setdefault(piece, len(vocab))
    (directory / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    tokenizer = transformers.M2M100Tokenizer(str(directory / "vocab.json"),
                                             str(directory / "sentencepiece.bpe.model"))
    tokenizer.save_pretrained(directory)
    return directory


def marian_model(directory: Path, **config: Any) -> Any:
    """A tiny OPUS-MT look-alike: `marian_dir`'s tokenizer files plus a random MarianMTModel
    whose special ids are the tokenizer's, saved beside them. `config` overrides LAYERS."""
    marian_dir(directory)
    size = len(transformers.MarianTokenizer.from_pretrained(directory))
    settings = transformers.MarianConfig(vocab_size=size, pad_token_id=size - 1, eos_token_id=0,
                                         decoder_start_token_id=size - 1, **{**LAYERS, **config})
    model = transformers.MarianMTModel(settings).eval()
    model.save_pretrained(directory)
    return model


def m2m_model(directory: Path) -> Any:
    """A tiny M2M-100 look-alike: `m2m_dir`'s tokenizer files plus a random model saved beside them
    (its vocabulary: vocab.json, 100 language codes, 8 "madeup" words)."""
    m2m_dir(directory)
    size = transformers.M2M100Tokenizer.from_pretrained(directory).get_lang_id("zu") + 1 + 8
    config = transformers.M2M100Config(vocab_size=size, pad_token_id=1, eos_token_id=2,
                                       decoder_start_token_id=2, **LAYERS)
    model = transformers.M2M100ForConditionalGeneration(config).eval()
    model.save_pretrained(directory)
    return model


def marian_greedy_texts(model: Any, directory: Path) -> list[str]:
    """transformers' own greedy translations of TEXTS: tokenizer, generate, batch_decode."""
    tokenizer = transformers.MarianTokenizer.from_pretrained(directory)
    batch = tokenizer(TEXTS, return_tensors="pt", padding=True)
    out = model.generate(**batch, do_sample=False, num_beams=1, max_new_tokens=40, forced_eos_token_id=None)
    return list(tokenizer.batch_decode(out, skip_special_tokens=True))
