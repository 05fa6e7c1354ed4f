"""Imported tokenizers give the ids transformers gives, framed per family, and decode back the same.

Every tokenizer is built here from SentencePiece models trained on a few sentences: Marian's
source.spm/target.spm/vocab.json, M2M-100's sentencepiece.bpe.model/vocab.json, and the
tokenizer.json that transformers writes for NLLB and mBART."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hf_models import LAYERS, transformers
from tokenizer_files import DE_WORDS, EN_WORDS, TEXTS, m2m_dir, marian_dir, train_spm

from polyseq.interop.hf import import_hf
from polyseq.interop.tokenizers import load_tokenizer
from polyseq.model.checkpoint import load_model
from polyseq.translator import Translator


def _save_model(directory: Path, config_class: str, model_class: str, vocab: int, **values: object) -> None:
    torch.manual_seed(0)
    config = getattr(transformers, config_class)(vocab_size=vocab, **{**LAYERS, **values})
    getattr(transformers, model_class)(config).eval().save_pretrained(directory)


def test_marian_source_target_and_decoding_match(tmp_path: Path) -> None:
    hf_dir = marian_dir(tmp_path / "hf")
    theirs = transformers.MarianTokenizer.from_pretrained(hf_dir)
    ours = load_tokenizer(_import(hf_dir, tmp_path, "MarianConfig", "MarianMTModel", len(theirs),
                                  pad_token_id=len(theirs) - 1, eos_token_id=0,
                                  decoder_start_token_id=len(theirs) - 1))
    for text in TEXTS:
        assert ours.source_ids(text, "de", "en") == theirs(text).input_ids
        target = theirs(text_target=text).input_ids
        assert ours.encode_target(text) + [ours.eos_id] == target
        assert ours.decode(target) == theirs.decode(target, skip_special_tokens=True)
    framing = ours.framing("en", "de")
    assert framing.decoder_prefix == (len(theirs) - 1,)  # Marian starts the decoder with <pad>
    assert ours.languages == ("en", "de")


def test_marian_multilingual_target_code_leads_the_source(tmp_path: Path) -> None:
    hf_dir = marian_dir(tmp_path / "hf", codes=("fr", "de"))
    theirs = transformers.MarianTokenizer.from_pretrained(hf_dir)
    size = len(theirs)
    ours = load_tokenizer(_import(hf_dir, tmp_path, "MarianConfig", "MarianMTModel", size,
                                  pad_token_id=size - 1, eos_token_id=0, decoder_start_token_id=size - 1))
    assert ours.languages == ("fr", "de")
    assert ours.source_ids(TEXTS[0], "de") == theirs(f">>de<< {TEXTS[0]}").input_ids


def test_m2m100_language_codes_frame_source_and_decoder(tmp_path: Path) -> None:
    hf_dir = m2m_dir(tmp_path / "hf")
    theirs = transformers.M2M100Tokenizer.from_pretrained(hf_dir, src_lang="en", tgt_lang="de")
    size = theirs.get_lang_id("zu") + 1 + 8  # vocab.json, 100 language codes, 8 "madeup" words
    ours = load_tokenizer(_import(hf_dir, tmp_path, "M2M100Config", "M2M100ForConditionalGeneration",
                                  size, pad_token_id=1, eos_token_id=2, decoder_start_token_id=2))
    assert len(ours.languages) == 100 and "de" in ours.languages
    for text in TEXTS:
        ids = theirs(text).input_ids
        assert ours.source_ids(text, "de", "en") == ids
        # transformers keeps "__en__" when it skips special tokens; polyseq drops language codes
        assert ours.decode(ids) == theirs.decode(ids[1:], skip_special_tokens=True) == text
    assert ours.framing("en", "de").decoder_prefix == (2, theirs.get_lang_id("de"))


@pytest.mark.parametrize(("kind", "src", "tgt"), [("nllb", "eng_Latn", "deu_Latn"),
                                                 ("mbart", "en_XX", "de_DE"), ("mbart50", "en_XX", "de_DE")])
def test_tokenizer_json_families_match(kind: str, src: str, tgt: str, tmp_path: Path) -> None:
    pytest.importorskip("google.protobuf", reason="transformers needs protobuf to convert SentencePiece")
    raw = tmp_path / "raw"
    raw.mkdir()
    if kind == "nllb":  # NLLB's SentencePiece model is BPE; transformers converts it to tokenizer.json
        train_spm(raw / "sentencepiece.bpe.model", EN_WORDS + DE_WORDS, 4, "bpe", 90)
        from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

        theirs = transformers.NllbTokenizer.from_pretrained(raw, extra_special_tokens=FAIRSEQ_LANGUAGE_CODES)
        classes = ("M2M100Config", "M2M100ForConditionalGeneration")
    else:  # mBART-50 frames like M2M-100, from a tokenizer.json
        train_spm(raw / "sentencepiece.bpe.model", EN_WORDS + DE_WORDS, 4)
        tokenizer_class = transformers.MBartTokenizer if kind == "mbart" else transformers.MBart50Tokenizer
        theirs = tokenizer_class.from_pretrained(raw)
        classes = ("MBartConfig", "MBartForConditionalGeneration")
    theirs.save_pretrained(tmp_path / "hf")
    size = max(theirs.get_vocab().values()) + 1
    ours = load_tokenizer(_import(tmp_path / "hf", tmp_path, *classes, size, pad_token_id=1,
                                  eos_token_id=2, decoder_start_token_id=2))
    theirs.src_lang = src
    for text in TEXTS:
        ids = theirs(text).input_ids
        assert ours.source_ids(text, tgt, src) == ids
        assert ours.decode(ids) == theirs.decode(ids, skip_special_tokens=True)
    target = theirs.convert_tokens_to_ids(tgt)
    expected = (target,) if kind == "mbart" else (2, target)
    assert ours.framing(src, tgt).decoder_prefix == expected
    # src_lang="auto" detects among the family's own codes and answers in them
    german = "Ein Mann fährt mit dem Fahrrad durch die Stadt und grüßt die Nachbarn."
    output = Translator.load(tmp_path / "polyseq").translate_detailed([german], "auto", src, "greedy")
    assert output.detected is not None and output.detected[0].language == tgt


def _import(hf_dir: Path, tmp_path: Path, config_class: str, model_class: str, vocab: int,
            **values: object) -> Path:
    _save_model(hf_dir, config_class, model_class, vocab, **values)
    return import_hf(hf_dir, tmp_path / "polyseq")


def test_tokenizer_ids_beyond_the_embedding_are_refused(tmp_path: Path) -> None:
    from polyseq.interop.families import InteropError

    hf_dir = m2m_dir(tmp_path / "hf")
    with pytest.raises(InteropError, match="tokenizer uses id"):
        _import(hf_dir, tmp_path, "M2M100Config", "M2M100ForConditionalGeneration", 64, pad_token_id=1,
                eos_token_id=2, decoder_start_token_id=2)


def test_marian_text_in_text_out_matches_transformers(tmp_path: Path) -> None:
    """The whole path: tokenizer, polyseq greedy on the imported weights, detokenizer."""
    from polyseq.decoding import generate
    from polyseq.decoding.core import DecodeInput, LengthLimit

    hf_dir = marian_dir(tmp_path / "hf")
    theirs = transformers.MarianTokenizer.from_pretrained(hf_dir)
    size = len(theirs)
    model_dir = _import(hf_dir, tmp_path, "MarianConfig", "MarianMTModel", size, pad_token_id=size - 1,
                        eos_token_id=0, decoder_start_token_id=size - 1, activation_function="swish")
    hf_model = transformers.MarianMTModel.from_pretrained(hf_dir).eval()
    batch = theirs(TEXTS, return_tensors="pt", padding=True)
    generated = hf_model.generate(**batch, do_sample=False, num_beams=1, max_new_tokens=12,
                                  forced_eos_token_id=None)
    expected = theirs.batch_decode(generated, skip_special_tokens=True)
    ours, model = load_tokenizer(model_dir), load_model(model_dir)
    framing = ours.framing("en", "de")
    src = batch.input_ids  # the same ids, as the tokenizer test shows
    prefix = torch.tensor([framing.decoder_prefix] * len(TEXTS))
    result = generate(model, DecodeInput(src, prefix, ours.eos_id, ours.pad_id), "greedy",
                    max_length=LengthLimit(0.0, 12))
    assert [ours.decode(h.tokens) for h in result.best()] == expected



@pytest.mark.parametrize("family", ["marian", "m2m_100"])
def test_unknown_pieces_and_bos_decode_as_transformers_drops_them(family: str, tmp_path: Path) -> None:
    """<unk> (and M2M-100's <s>) are special to transformers: decode(skip_special_tokens=True) leaves
    them out, and so does polyseq (it printed "⁇")."""
    if family == "marian":
        theirs = transformers.MarianTokenizer.from_pretrained(marian_dir(tmp_path / "hf"))
        size = len(theirs)
        values = dict(pad_token_id=size - 1, eos_token_id=0, decoder_start_token_id=size - 1)
        classes = ("MarianConfig", "MarianMTModel")
    else:
        theirs = transformers.M2M100Tokenizer.from_pretrained(m2m_dir(tmp_path / "hf"), src_lang="en")
        size = theirs.get_lang_id("zu") + 1 + 8
        values = dict(pad_token_id=1, eos_token_id=2, decoder_start_token_id=2)
        classes = ("M2M100Config", "M2M100ForConditionalGeneration")
    ours = load_tokenizer(_import(tmp_path / "hf", tmp_path, *classes, size, **values))
    for text in ["the cat sees Ω dog", "the quick fox"]:  # Ω, q, k and f are no piece of either
        ids = theirs(text).input_ids
        if family == "m2m_100":  # <s> where "__en__" was (transformers keeps language codes)
            ids = [theirs.bos_token_id, *ids[1:]]
        assert theirs.unk_token_id in ids
        assert ours.decode(ids) == theirs.decode(ids, skip_special_tokens=True)
