"""Parity with transformers on tiny random models of every family, both directions: logits agree
within 1e-4, and greedy and beam search return identical tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hf_models import (
    FAMILIES,
    SPECS,
    hf_generate,
    make_hf_model,
    polyseq_generate,
    source_batch,
    transformers,
)

from polyseq.interop.hf import export_hf, import_hf, read_hf_weights
from polyseq.model.checkpoint import load_model

ATOL = 1e-4
MAX_NEW = 24


def _logits_agree(hf_model: torch.nn.Module, ours: torch.nn.Module, family: str) -> None:
    spec = SPECS[family]
    src = source_batch(spec)
    tgt = torch.cat([torch.tensor([spec.prefix] * 3), torch.randint(4, 90, (3, 6))], dim=1)
    with torch.no_grad():
        theirs = hf_model(input_ids=src, attention_mask=src != spec.pad, decoder_input_ids=tgt).logits
        mine = ours(src, tgt)
    assert mine.shape == theirs.shape
    torch.testing.assert_close(mine, theirs, atol=ATOL, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_imported_logits_match_transformers(family: str, tmp_path: Path) -> None:
    hf_model = make_hf_model(family, tmp_path / "hf")
    ours = load_model(import_hf(tmp_path / "hf", tmp_path / "polyseq", with_tokenizer=False))
    _logits_agree(hf_model, ours, family)


@pytest.mark.parametrize("family", FAMILIES)
def test_imported_greedy_and_beam_match_generate(family: str, tmp_path: Path) -> None:
    spec = SPECS[family]
    hf_model = make_hf_model(family, tmp_path / "hf", seed=3)
    ours = load_model(import_hf(tmp_path / "hf", tmp_path / "polyseq", with_tokenizer=False))
    src = source_batch(spec, seed=5, rows=4)
    greedy = hf_generate(hf_model, spec, src, MAX_NEW)
    assert polyseq_generate(ours, spec, src, MAX_NEW) == greedy
    beam = hf_generate(hf_model, spec, src, MAX_NEW, beams=4)
    assert polyseq_generate(ours, spec, src, MAX_NEW, "beam", beam_size=4, length_penalty=1.0) == beam
    lengths = [len(row) for row in greedy + beam]
    assert min(lengths) < MAX_NEW  # some hypotheses ended with EOS: the test sees stopping too


@pytest.mark.parametrize("family", FAMILIES)
def test_export_gives_transformers_the_same_model(family: str, tmp_path: Path) -> None:
    """HF -> polyseq -> HF: the re-exported checkpoint holds the original's tensors, bit for bit,
    and transformers loads it with from_pretrained."""
    make_hf_model(family, tmp_path / "hf")
    export_hf(import_hf(tmp_path / "hf", tmp_path / "polyseq", with_tokenizer=False), tmp_path / "again")
    original, again = read_hf_weights(tmp_path / "hf"), read_hf_weights(tmp_path / "again")
    for name, tensor in original.items():
        if "embed_positions" in name and name not in again:  # sinusoidal tables are recomputed
            continue
        assert torch.equal(again[name], tensor), name
    reloaded = getattr(transformers, SPECS[family].model_class).from_pretrained(tmp_path / "again")
    ours = load_model(tmp_path / "polyseq")
    _logits_agree(reloaded.eval(), ours, family)


def test_a_pytorch_bin_checkpoint_is_read_without_code(tmp_path: Path) -> None:
    model = make_hf_model("marian", tmp_path / "hf")
    (tmp_path / "hf" / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "hf" / "pytorch_model.bin")
    imported = import_hf(tmp_path / "hf", tmp_path / "polyseq", with_tokenizer=False)
    _logits_agree(model, load_model(imported), "marian")


@pytest.mark.parametrize(("family", "generation_file"),
                         [("marian", True), ("marian", False), ("m2m_100", True)])
def test_a_reexport_keeps_the_original_settings_and_bias(family: str, generation_file: bool,
                                                         tmp_path: Path) -> None:
    """An OPUS-MT-like checkpoint: tokenizer_class and bad_words_ids in config.json and, as the hub
    has them, num_beams and max_length in generation_config.json (or, in older ones, in config.json).
    polyseq suppresses <pad> with a -inf bias; the re-export has the original's settings, files and
    bias (M2M-100: none), and transformers generates the same from both."""
    spec, hf_dir = SPECS[family], tmp_path / "hf"
    make_hf_model(family, hf_dir)
    settings = {"bad_words_ids": [[spec.pad]], "num_beams": 4, "max_length": 512}
    config = json.loads((hf_dir / "config.json").read_text())
    config |= {"tokenizer_class": "SomeTokenizer", "bad_words_ids": [[spec.pad]]}
    if generation_file:
        generation = json.loads((hf_dir / "generation_config.json").read_text()) | settings
        (hf_dir / "generation_config.json").write_text(json.dumps(generation))
    else:
        config |= settings
        (hf_dir / "generation_config.json").unlink()
    (hf_dir / "config.json").write_text(json.dumps(config))
    imported = import_hf(hf_dir, tmp_path / "polyseq", with_tokenizer=False)
    assert load_model(imported).output_bias[spec.pad] == float("-inf")  # polyseq never generates <pad>
    again = export_hf(imported, tmp_path / "again")
    for name in ("config.json", "generation_config.json"):
        assert (again / name).is_file() == (hf_dir / name).is_file(), name
        if (hf_dir / name).is_file():
            theirs, ours = (json.loads((d / name).read_text()) for d in (hf_dir, again))
            assert {k: v for k, v in ours.items() if k in theirs and k != "transformers_version"} == \
                {k: v for k, v in theirs.items() if k != "transformers_version"}, name
    weights, back = read_hf_weights(hf_dir), read_hf_weights(again)
    assert ("final_logits_bias" in back) == (family == "marian")
    assert all(torch.equal(back[name], tensor) for name, tensor in weights.items()  # the bias too
               if name in back or "embed_positions" not in name)
    src = source_batch(spec, seed=5, rows=4)
    outputs = []
    for directory in (hf_dir, again):
        model = getattr(transformers, spec.model_class).from_pretrained(directory).eval()
        assert model.generation_config.num_beams == 4
        assert model.generation_config.bad_words_ids == [[spec.pad]]
        with torch.no_grad():  # the checkpoint's own settings: beam 4, <pad> suppressed
            outputs.append(model.generate(src, attention_mask=src != spec.pad, max_new_tokens=12).tolist())
    assert outputs[0] == outputs[1]
