"""Translator runs imported models (after the Translator hook patch): text in, text out, the same
as transformers' tokenizer + generate + batch_decode, with polyseq's strategies."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizer_files import TEXTS, m2m_model, marian_greedy_texts, marian_model

from polyseq.decoding.core import LengthLimit
from polyseq.interop.hf import import_hf
from polyseq.translator import Translator


def test_translator_runs_an_imported_marian_model(tmp_path: Path) -> None:
    hf_dir = tmp_path / "hf"
    expected = marian_greedy_texts(marian_model(hf_dir), hf_dir)
    translator = Translator.load(import_hf(hf_dir, tmp_path / "polyseq"))
    assert translator.languages == ("en", "de")
    got = translator.translate(TEXTS, "en", "de", "greedy", max_length=LengthLimit(0.0, 40))
    assert got == expected
    assert len(translator.translate(TEXTS, "en", "de", "beam", beam_size=3)) == len(TEXTS)
    scores = translator.log_probs(TEXTS, ["der Hund", "die Katze", "das Haus"], "de", "en")
    assert len(scores) == 3 and all(s < 0 for s in scores)


def test_translator_frames_m2m100_with_both_languages(tmp_path: Path) -> None:
    import pytest

    from polyseq.text.tokenizer import UnknownLanguageError

    hf_dir = tmp_path / "hf"
    m2m_model(hf_dir)
    translator = Translator.load(import_hf(hf_dir, tmp_path / "polyseq"))
    assert len(translator.translate(TEXTS, "en", "de", "greedy")) == len(TEXTS)
    with pytest.raises(UnknownLanguageError, match="source language"):
        translator.translate(TEXTS, None, "de", "greedy")


def test_a_bilingual_marian_model_translates_its_one_direction(tmp_path: Path) -> None:
    """An en -> de model has no language tokens: any other direction between en and de would come
    out in German, so it is refused, naming the model's direction."""
    import pytest

    from polyseq.interop.tokenizers import load_tokenizer
    from polyseq.text.tokenizer import UnknownLanguageError

    hf_dir = tmp_path / "hf"
    marian_model(hf_dir)
    model_dir = import_hf(hf_dir, tmp_path / "polyseq")
    tokenizer = load_tokenizer(model_dir)
    assert tokenizer.framing("en", "de") == tokenizer.framing(None, "de")
    for src_lang, tgt_lang in [("de", "en"), ("de", "de"), ("en", "en"), (None, "en")]:
        with pytest.raises(UnknownLanguageError, match="translates en -> de only"):
            tokenizer.framing(src_lang, tgt_lang)
    translator = Translator.load(model_dir)
    with pytest.raises(UnknownLanguageError, match="not de -> en"):
        translator.translate(TEXTS, "de", "en", "greedy")
    assert len(translator.translate(TEXTS, None, "de", "greedy")) == len(TEXTS)
    # its embeddings read English as it is read to translate into German, its one target
    assert torch.equal(translator.embed(TEXTS, "en"), translator.embed(TEXTS, "en", "de"))
