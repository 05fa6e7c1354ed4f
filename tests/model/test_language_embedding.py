"""model.language_embedding: target-language vectors from the source's tag, added to the decoder's
inputs or final states. Cached decoding equals uncached, rows keep their own language through
beam reordering and finished rows, a default model is unchanged, and export refuses it."""

from __future__ import annotations

import pytest
import torch

from polyseq.config import LanguageEmbedding, ModelConfig, load_config
from polyseq.decoding import generate
from polyseq.decoding.core import DecodeInput
from polyseq.interop.families import InteropError, family_of
from polyseq.model.checkpoint import load_model, save_model_files
from polyseq.model.transformer import Seq2Seq

TAGS = (5, 6)  # the "language tags" of these tests: the first source token


def make_model(where: LanguageEmbedding) -> Seq2Seq:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=40, d_model=32, encoder_layers=1, decoder_layers=2, heads=4,
                         ffn_dim=64, dropout=0.0, max_positions=32, language_embedding=where)
    model = Seq2Seq(config).eval()
    if model.target_language is not None:  # zero at initialisation: give it something to do
        torch.nn.init.normal_(model.target_language.project.weight, std=2.0)
    return model


def sources() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    src = torch.randint(7, 40, (4, 8), generator=generator)
    src[:, 0] = torch.tensor([TAGS[0], TAGS[1], TAGS[0], TAGS[1]])
    src[1, 5:] = 0
    return src


@pytest.mark.parametrize("where", [LanguageEmbedding.DECODER, LanguageEmbedding.OUTPUT])
def test_cached_steps_equal_uncached_and_the_tag_matters(where: LanguageEmbedding) -> None:
    model, src = make_model(where), sources()
    tgt = torch.randint(7, 40, (4, 6), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        memory = model.encode(src)
        full = model.decode_step(tgt, memory)
        cache = model.init_cache(memory, capacity=2)
        steps = torch.cat([model.decode_step(tgt[:, i : i + 1], memory, cache) for i in range(6)], 1)
        swapped = src.clone()
        swapped[:, 0] = TAGS[1] + TAGS[0] - src[:, 0]
        other = model(swapped, tgt)
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=0)
    torch.testing.assert_close(model(src, tgt), full, atol=1e-5, rtol=0)
    assert (other - full).abs().max() > 0.1


@pytest.mark.parametrize("where", [LanguageEmbedding.DECODER, LanguageEmbedding.OUTPUT])
def test_rows_keep_their_language_in_batches_and_beams(where: LanguageEmbedding) -> None:
    model, src = make_model(where), sources()
    prefix = src[:, :1].clone()
    inputs = DecodeInput(src, prefix, eos_id=3, pad_id=0)
    batched = generate(model, inputs, "greedy").best()
    alone = [generate(model, DecodeInput(src[i : i + 1], prefix[i : i + 1], 3, 0), "greedy").best()[0]
             for i in range(4)]
    assert [h.tokens for h in batched] == [h.tokens for h in alone]
    assert len({h.tokens for h in batched}) > 1 and len({len(h.tokens) for h in batched}) > 1
    beam = generate(model, inputs, "beam", beam_size=1).best()
    assert [h.tokens for h in beam] == [h.tokens for h in batched]


def test_a_default_model_has_no_language_parameters_and_export_refuses_the_option(tmp_path) -> None:
    plain = make_model(LanguageEmbedding.NONE)
    assert not any(name.startswith("target_language") for name in plain.state_dict())
    with_output = make_model(LanguageEmbedding.OUTPUT)
    assert set(with_output.state_dict()) - set(plain.state_dict()) == {"target_language.project.weight"}
    with pytest.raises(InteropError, match="language_embedding=output"):
        family_of(with_output.config)
    save_model_files(tmp_path, with_output, {})
    loaded = load_model(tmp_path)
    assert loaded.config.language_embedding is LanguageEmbedding.OUTPUT
    src = sources()
    torch.testing.assert_close(loaded(src, src[:, :3]), with_output(src, src[:, :3]))


def test_the_setting_from_the_command_line_and_a_fresh_vector_is_zero() -> None:
    config = load_config(None, ["model.language_embedding=decoder", "model.vocab_size=40"]).model
    assert config.language_embedding is LanguageEmbedding.DECODER
    model = Seq2Seq(config)
    assert model.target_language is not None
    assert not model.target_language.project.weight.any()
