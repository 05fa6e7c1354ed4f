"""polyseq's SentencePiece tokenizer as a Hugging Face tokenizer.json, for exported models.

The same pieces, scores and ids in a `tokenizers` Unigram model with byte fallback, identity
normalization and no dummy prefix (as polyseq trains them), so transformers' AutoTokenizer and
CTranslate2's converter see polyseq's vocabulary id for id. Two differences in encoding text:

- a literal "▁", which polyseq encodes as its three byte pieces, becomes a space here;
- the control pieces (<pad>, <unk>, <s>, </s> and the <2xx> tags) are special tokens here, so that
  transformers knows them and skips them when decoding; the `tokenizers` library then matches their
  spelling in the text: "<s>seven</s> eight" gives [<s>, seven, </s>, ▁eight] and "<2de>" the tag,
  where polyseq encodes such text as ordinary pieces. Texts that may hold them go in as polyseq's ids.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import sentencepiece as spm

from polyseq.text.tokenizer import MODEL_FILE, Tokenizer

if TYPE_CHECKING:
    from tokenizers import Tokenizer as RustTokenizer


def build_hf_tokenizer(model_file: Path) -> RustTokenizer:
    """A `tokenizers` Unigram model with the SentencePiece model's pieces, scores and ids."""
    from tokenizers import AddedToken, decoders, models, normalizers
    from tokenizers import Tokenizer as RustTokenizer

    processor = spm.SentencePieceProcessor(model_file=str(model_file))
    size = processor.get_piece_size()
    vocab = [(processor.id_to_piece(i), processor.get_score(i)) for i in range(size)]
    tokenizer = RustTokenizer(models.Unigram(vocab, unk_id=Tokenizer.unk_id, byte_fallback=True))
    tokenizer.normalizer = normalizers.Replace(" ", "\u2581")  # SentencePiece's whitespace symbol
    tokenizer.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.ByteFallback(),
                                           decoders.Fuse()])
    specials = [processor.id_to_piece(i) for i in range(size)
                if processor.is_control(i) or processor.is_unknown(i)]
    tokenizer.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    return tokenizer


def write_hf_tokenizer(model_dir: Path, output: Path) -> None:
    """tokenizer.json + tokenizer_config.json (+ polyseq's tokenizer.model, for the way back)."""
    build_hf_tokenizer(model_dir / MODEL_FILE).save(str(output / "tokenizer.json"))
    settings = {"tokenizer_class": "PreTrainedTokenizerFast", "pad_token": "<pad>", "unk_token": "<unk>",
                "bos_token": "<s>", "eos_token": "</s>", "model_max_length": 1_000_000,
                "clean_up_tokenization_spaces": False}
    (output / "tokenizer_config.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    shutil.copy2(model_dir / MODEL_FILE, output / MODEL_FILE)
