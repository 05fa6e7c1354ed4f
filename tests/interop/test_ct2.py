"""polyseq models in CTranslate2: greedy and beam outputs identical to polyseq's, token for token,
and imported Hugging Face models convert back out as they came in."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

ctranslate2 = pytest.importorskip("ctranslate2", reason="ctranslate2 is not installed: pip install it")

from polyseq.decoding import generate  # noqa: E402
from polyseq.decoding.core import DecodeInput, LengthLimit  # noqa: E402
from polyseq.interop.ct2 import Quantization, export_ct2, vocabulary  # noqa: E402
from polyseq.model.checkpoint import load_model  # noqa: E402
from polyseq.text.tokenizer import Tokenizer  # noqa: E402

SOURCES = ["one hundred and twelve", "seven", "four thousand three hundred and one", "ninety-nine"]


def _polyseq(model_dir: Path, strategy: str, **settings: object) -> list[list[int]]:
    tokenizer, model = Tokenizer.load(model_dir), load_model(model_dir)
    rows = [tokenizer.source_ids(text, "de") for text in SOURCES]
    src = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
    for index, row in enumerate(rows):
        src[index, : len(row)] = torch.tensor(row)
    prefix = torch.full((len(rows), 1), tokenizer.lang_id("de"))
    inputs = DecodeInput(src, prefix, tokenizer.eos_id, tokenizer.pad_id)
    result = generate(model, inputs, strategy, max_length=LengthLimit(0.0, 30), **settings)
    return [list(h.tokens) for h in result.best()]


def _ct2(ct2_dir: Path, model_dir: Path, beam: int, compute_type: str = "float32") -> list[list[int]]:
    tokenizer = Tokenizer.load(model_dir)
    tokens = vocabulary(ct2_dir)
    index = {token: i for i, token in enumerate(tokens)}
    translator = ctranslate2.Translator(str(ct2_dir), device="cpu", compute_type=compute_type,
                                        intra_threads=1)
    batch = [[tokens[i] for i in tokenizer.source_ids(text, "de")] for text in SOURCES]
    results = translator.translate_batch(batch, target_prefix=[["<2de>"]] * len(SOURCES), beam_size=beam,
                                         max_decoding_length=30, length_penalty=1.0)
    # the prefix's first token is the decoder start, which CTranslate2 does not return
    return [[index[t] for t in result.hypotheses[0]] for result in results]


def test_ct2_greedy_and_beam_equal_polyseq(tiny_model_dir: Path, tmp_path: Path) -> None:
    ct2_dir = export_ct2(tiny_model_dir, tmp_path / "ct2")
    assert vocabulary(ct2_dir)[:4] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert _ct2(ct2_dir, tiny_model_dir, beam=1) == _polyseq(tiny_model_dir, "greedy")
    assert _ct2(ct2_dir, tiny_model_dir, beam=4) == _polyseq(tiny_model_dir, "beam", beam_size=4,
                                                             length_penalty=1.0)


def test_int8_ct2_model_converts_and_translates(tiny_model_dir: Path, tmp_path: Path) -> None:
    ct2_dir = export_ct2(tiny_model_dir, tmp_path / "ct2", Quantization.INT8)
    outputs = _ct2(ct2_dir, tiny_model_dir, beam=1, compute_type="int8")
    assert len(outputs) == len(SOURCES) and all(outputs)


def test_an_imported_marian_model_goes_out_to_ct2_unchanged(tmp_path: Path) -> None:
    """HF Marian -> polyseq -> CTranslate2 (through its own Marian converter): same greedy tokens."""
    from hf_models import transformers
    from tokenizer_files import TEXTS, marian_model

    from polyseq.interop.hf import import_hf
    from polyseq.interop.tokenizers import load_tokenizer

    hf_dir = tmp_path / "hf"
    torch.manual_seed(0)
    marian_model(hf_dir, init_std=0.1)
    hf_tokenizer = transformers.MarianTokenizer.from_pretrained(hf_dir)
    model_dir = import_hf(hf_dir, tmp_path / "polyseq")
    ct2_dir = export_ct2(model_dir, tmp_path / "ct2")
    tokenizer, model = load_tokenizer(model_dir), load_model(model_dir)
    framing = tokenizer.framing("en", "de")
    rows = [framing.source(tokenizer.encode(text)) for text in TEXTS]
    src = torch.full((len(rows), max(map(len, rows))), tokenizer.pad_id)
    for index, row in enumerate(rows):
        src[index, : len(row)] = torch.tensor(row)
    prefix = torch.tensor([framing.decoder_prefix] * len(rows))
    ours = generate(model, DecodeInput(src, prefix, tokenizer.eos_id, tokenizer.pad_id), "greedy",
                  max_length=LengthLimit(0.0, 20))
    translator = ctranslate2.Translator(str(ct2_dir), device="cpu", intra_threads=1)
    batch = [hf_tokenizer.convert_ids_to_tokens(row) for row in rows]
    results = translator.translate_batch(batch, beam_size=1, max_decoding_length=20)
    theirs = [hf_tokenizer.convert_tokens_to_ids(result.hypotheses[0]) for result in results]
    assert [list(h.tokens) for h in ours.best()] == theirs
