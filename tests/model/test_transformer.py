"""The model protocol: cached decoding equals uncached, k tokens at once equal k single steps,
and the cache's truncate/reorder behave as if the removed work had never happened."""

from __future__ import annotations

import pytest
import torch

from polyseq.config import ModelConfig, NormPlacement
from polyseq.model.transformer import Seq2Seq

ATOL = 1e-5


def make_model(norm: NormPlacement = NormPlacement.PRE, tie: bool = True) -> Seq2Seq:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=40, d_model=32, encoder_layers=2, decoder_layers=2, heads=4,
                         ffn_dim=64, dropout=0.0, max_positions=32, norm=norm, tie_embeddings=tie)
    return Seq2Seq(config).eval()


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    src = torch.randint(4, 40, (3, 9), generator=generator)
    src[1, 6:] = 0  # right padding
    src[2, 3:] = 0
    tgt = torch.randint(4, 40, (3, 7), generator=generator)
    return src, tgt


@pytest.mark.parametrize("norm", list(NormPlacement))
@pytest.mark.parametrize("tie", [True, False])
def test_cached_single_steps_equal_uncached(norm: NormPlacement, tie: bool) -> None:
    model = make_model(norm, tie)
    src, tgt = batch()
    with torch.no_grad():
        memory = model.encode(src)
        full = model.decode_step(tgt, memory)  # (B, T, V)
        cache = model.init_cache(memory, capacity=2)  # too small on purpose: it must grow
        steps = torch.cat([model.decode_step(tgt[:, i : i + 1], memory, cache) for i in range(7)], 1)
    assert full.shape == (3, 7, 40)
    torch.testing.assert_close(steps, full, atol=ATOL, rtol=0)
    assert cache.lengths.tolist() == [7, 7, 7]


def test_k_tokens_at_once_equal_k_single_steps() -> None:
    model = make_model()
    src, tgt = batch()
    with torch.no_grad():
        memory = model.encode(src)
        one = model.init_cache(memory)
        singles = torch.cat([model.decode_step(tgt[:, i : i + 1], memory, one) for i in range(7)], 1)
        chunked = model.init_cache(memory)
        parts = [model.decode_step(tgt[:, a:b], memory, chunked) for a, b in [(0, 1), (1, 5), (5, 7)]]
    torch.testing.assert_close(torch.cat(parts, 1), singles, atol=ATOL, rtol=0)


def test_truncate_then_redecode_equals_never_decoded() -> None:
    model = make_model()
    src, tgt = batch()
    wrong = torch.randint(4, 40, (3, 4), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        memory = model.encode(src)
        clean = model.init_cache(memory)
        model.decode_step(tgt[:, :3], memory, clean)
        expected = model.decode_step(tgt[:, 3:], memory, clean)
        rolled = model.init_cache(memory)
        model.decode_step(tgt[:, :3], memory, rolled)
        model.decode_step(wrong, memory, rolled)  # a rejected draft
        rolled.truncate(3)
        again = model.decode_step(tgt[:, 3:], memory, rolled)
    torch.testing.assert_close(again, expected, atol=ATOL, rtol=0)


def test_per_row_truncate_continues_each_row_from_its_own_length() -> None:
    model = make_model()
    src, tgt = batch()
    with torch.no_grad():
        memory = model.encode(src)
        full = model.decode_step(tgt, memory)
        cache = model.init_cache(memory)
        model.decode_step(tgt[:, :5], memory, cache)
        cache.truncate(torch.tensor([2, 5, 3]))  # rows accepted different prefixes
        # every row continues with its own next token at its own position
        next_tokens = tgt[torch.arange(3), torch.tensor([2, 5, 3])][:, None]
        logits = model.decode_step(next_tokens, memory, cache)[:, 0]
    for row, position in enumerate([2, 5, 3]):
        torch.testing.assert_close(logits[row], full[row, position], atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="only shorten"):
        cache.truncate(10)


def test_reorder_selects_rows_of_the_cache() -> None:
    model = make_model()
    src, tgt = batch()
    with torch.no_grad():
        memory = model.encode(src)
        full = model.decode_step(tgt, memory)
        cache = model.init_cache(memory)
        model.decode_step(tgt[:, :4], memory, cache)
        order = torch.tensor([2, 0, 0])
        cache.reorder(order)
        logits = model.decode_step(tgt[order, 4:5], memory, cache)[:, 0]
    torch.testing.assert_close(logits, full[order, 4], atol=ATOL, rtol=0)


def test_padding_does_not_change_a_sentence() -> None:
    model = make_model()
    src, tgt = batch()
    with torch.no_grad():
        alone = model(src[2:3, :3], tgt[2:3])
        padded = model(src, tgt)[2:3]
    torch.testing.assert_close(padded, alone, atol=ATOL, rtol=0)


def test_too_long_input_is_an_error_not_a_truncation() -> None:
    model = make_model()
    with pytest.raises(ValueError, match="max_positions=32"):
        model.encode(torch.full((1, 33), 5))
