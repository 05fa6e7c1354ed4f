"""polyseq models handed to transformers: every architecture variant exports to the HF class that
computes the same function (logits within 1e-4, identical greedy and beam output), and comes back
(polyseq -> hf -> polyseq) with bit-identical weights."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from hf_models import (
    VARIANTS,
    Spec,
    favouring_padding,
    hf_generate,
    polyseq_generate,
    random_native,
    source_batch,
    transformers,
)

from polyseq.config import Positions
from polyseq.interop.families import InteropError, family_of
from polyseq.interop.hf import export_hf, import_hf
from polyseq.interop.tokenizers import load_tokenizer
from polyseq.model.checkpoint import load_model
from polyseq.text.tokenizer import Tokenizer

ATOL = 1e-4
MAX_NEW = 20


def _spec(model_dir: Path) -> Spec:
    tag = Tokenizer.load(model_dir).lang_id("de")
    return Spec("", "", {"pad_token_id": Tokenizer.pad_id, "eos_token_id": Tokenizer.eos_id}, (tag,))


def _assert_same_model(polyseq_dir: Path, hf_dir: Path) -> None:
    ours = load_model(polyseq_dir)
    family = json.loads((hf_dir / "polyseq.json").read_text())["family"]
    model_class = {"pegasus": "PegasusForConditionalGeneration", "marian": "MarianMTModel",
                   "m2m_100": "M2M100ForConditionalGeneration", "bart": "BartForConditionalGeneration",
                   "mbart": "MBartForConditionalGeneration"}[family]
    theirs = getattr(transformers, model_class).from_pretrained(hf_dir).eval()
    spec = _spec(polyseq_dir)
    src = source_batch(spec, seed=2, rows=4)
    tgt = torch.cat([torch.tensor([spec.prefix] * 4), torch.randint(5, 90, (4, 5))], dim=1)
    with torch.no_grad():
        expected = theirs(input_ids=src, attention_mask=src != spec.pad, decoder_input_ids=tgt).logits
        torch.testing.assert_close(ours(src, tgt), expected, atol=ATOL, rtol=0)
    assert polyseq_generate(ours, spec, src, MAX_NEW) == hf_generate(theirs, spec, src, MAX_NEW)
    beam = hf_generate(theirs, spec, src, MAX_NEW, beams=3)
    assert polyseq_generate(ours, spec, src, MAX_NEW, "beam", beam_size=3, length_penalty=1.0) == beam


def _assert_identical_weights(a: Path, b: Path) -> None:
    first, second = load_model(a), load_model(b)
    assert first.config == second.config
    one, two = first.state_dict(), second.state_dict()
    assert one.keys() == two.keys()
    for name, tensor in one.items():
        assert torch.equal(tensor, two[name]), name


def test_a_trained_model_exports_and_comes_back(tiny_model_dir: Path, tmp_path: Path) -> None:
    hf_dir = export_hf(tiny_model_dir, tmp_path / "hf")
    _assert_same_model(tiny_model_dir, hf_dir)
    _assert_identical_weights(tiny_model_dir, import_hf(hf_dir, tmp_path / "back"))
    back, text = load_tokenizer(tmp_path / "back"), "one hundred and twelve"
    assert isinstance(back, Tokenizer) and back.encode(text) == Tokenizer.load(tiny_model_dir).encode(text)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_exports_to_its_family(variant: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    changes, family = VARIANTS[variant]
    config = replace(load_model(tiny_model_dir).config, **changes)
    assert family_of(config) is family
    native = random_native(config, tiny_model_dir, tmp_path / "native")
    hf_dir = export_hf(native, tmp_path / "hf")
    _assert_same_model(native, hf_dir)
    _assert_identical_weights(native, import_hf(hf_dir, tmp_path / "back"))


def test_the_exported_tokenizer_matches_polyseq(tiny_model_dir: Path, tmp_path: Path) -> None:
    hf_dir = export_hf(tiny_model_dir, tmp_path / "hf")
    theirs = transformers.AutoTokenizer.from_pretrained(hf_dir)
    ours = Tokenizer.load(tiny_model_dir)
    for text in ["one hundred and twelve", "  zwei  tausend\tdrei", "neunzehn ü 😀"]:
        ids = theirs(text, add_special_tokens=False).input_ids
        assert ids == ours.encode(text)
        assert theirs.decode(ids) == ours.decode(ids) == text
    assert theirs.pad_token_id == ours.pad_id and theirs.eos_token_id == ours.eos_id
    # the documented difference: there, a control piece's spelling in a text is that special token
    ids = theirs("<s>seven</s> eight", add_special_tokens=False).input_ids
    assert ids[0] == ours.bos_id and ours.eos_id in ids and ids != ours.encode("<s>seven</s> eight")


def test_transformers_never_generates_padding_from_an_export(tiny_model_dir: Path, tmp_path: Path) -> None:
    """polyseq's strategies never generate <pad>; the export's generation_config.json bans it for
    transformers too, so a model that favours <pad> decodes alike there, and comes back without
    a bias for the ban (polyseq keeps it without one)."""
    tokenizer = Tokenizer.load(tiny_model_dir)
    spec = Spec("", "", {"pad_token_id": Tokenizer.pad_id, "eos_token_id": Tokenizer.eos_id},
                (tokenizer.lang_id("en"),))
    rows = [tokenizer.source_ids(text, "en") for text in ["12", "399", "7", "250", "81", "100"]]
    src = torch.full((len(rows), max(map(len, rows))), Tokenizer.pad_id)
    for index, row in enumerate(rows):
        src[index, : len(row)] = torch.tensor(row)
    native = favouring_padding(tiny_model_dir, tmp_path / "native", spec, src)
    hf_dir = export_hf(native, tmp_path / "hf")
    generation = json.loads((hf_dir / "generation_config.json").read_text())
    assert generation["bad_words_ids"] == [[Tokenizer.pad_id]]
    ours, theirs = load_model(native), transformers.AutoModelForSeq2SeqLM.from_pretrained(hf_dir).eval()
    assert polyseq_generate(ours, spec, src, MAX_NEW) == hf_generate(theirs, spec, src, MAX_NEW)
    assert polyseq_generate(ours, spec, src, MAX_NEW, "beam", beam_size=3,
                            length_penalty=1.0) == hf_generate(theirs, spec, src, MAX_NEW, beams=3)
    theirs.generation_config.bad_words_ids = None  # without the ban, transformers generates <pad>
    assert any(Tokenizer.pad_id in row for row in hf_generate(theirs, spec, src, MAX_NEW))
    _assert_identical_weights(native, import_hf(hf_dir, tmp_path / "back"))


def test_an_export_bans_padding_only_where_it_is_not_eos(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = replace(load_model(tiny_model_dir).config, pad_id=Tokenizer.eos_id)
    native = random_native(config, tiny_model_dir, tmp_path / "native")
    hf_dir = export_hf(native, tmp_path / "hf")
    assert "bad_words_ids" not in json.loads((hf_dir / "generation_config.json").read_text())


def test_a_model_no_hf_class_computes_is_refused(tiny_model_dir: Path) -> None:
    config = replace(load_model(tiny_model_dir).config, positions=Positions.LEARNED)
    with pytest.raises(InteropError, match="no Hugging Face architecture"):
        family_of(config)
