"""Flat passes compute what the model's modules compute, for every model variant, with and without
packed weights: FlatEncoder what `encode` does, with and without padding; FlatDecoder what
`init_cache`, `decode_hidden` and `project` do, for one token and several per row, with rows at one
length and at different lengths, on the same cache."""

from __future__ import annotations

import pytest
import torch

from helpers import pack_all
from polyseq.config import (
    Activation,
    EmbeddingNorm,
    EmbeddingScale,
    ModelConfig,
    NormPlacement,
    OutputBias,
    Positions,
)
from polyseq.model.flat import FlatDecoder, FlatEncoder, runs_flat
from polyseq.model.packed import packing_available
from polyseq.model.transformer import Seq2Seq

ATOL = 1e-5
VARIANTS = {
    "default": {},
    "post-norm, untied, bias": {"norm": NormPlacement.POST, "tie_embeddings": False,
                                "output_bias": OutputBias.BIAS},
    "bart-like": {"positions": Positions.LEARNED, "position_offset": 2, "activation": Activation.GELU,
                  "embedding_scale": EmbeddingScale.NONE, "embedding_norm": EmbeddingNorm.LAYER_NORM},
    "m2m-like": {"positions": Positions.SINUSOIDAL_FAIRSEQ, "position_offset": 2,
                 "activation": Activation.SWISH},
}


PACKED = [False, True] if packing_available() else [False]


def make_model(packed: bool = False, **variant: object) -> Seq2Seq:
    """With `packed`, every weight has a packed copy (see polyseq.model.packed)."""
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=40, d_model=32, encoder_layers=2, decoder_layers=2, heads=4, ffn_dim=64,
                         dropout=0.0, max_positions=16, **variant)  # type: ignore[arg-type]
    model = Seq2Seq(config).eval()
    with torch.no_grad():  # trained models have non-trivial norms and biases; so must the test
        for name, parameter in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                parameter.add_(0.1 * torch.randn_like(parameter))
    return pack_all(model) if packed else model


def started_caches(model: Seq2Seq, lengths: list[int]) -> tuple:
    """Two identical caches over a padded source, with rows left at `lengths` tokens."""
    generator = torch.Generator().manual_seed(1)
    src = torch.randint(4, 40, (3, 9), generator=generator)
    src[1, 5:] = 0
    memory = model.encode(src)
    caches = [model.init_cache(memory, capacity=2) for _ in range(2)]  # too small: must grow
    prefix = torch.randint(4, 40, (3, 4), generator=generator)
    for cache in caches:
        model.decode_hidden(prefix, memory, cache)
        cache.truncate(torch.tensor(lengths))
    return memory, caches


@pytest.mark.parametrize("packed", PACKED)
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("lengths", [[4, 1, 3], [2, 2, 2]])
def test_passes_equal_decode_hidden(variant: str, k: int, lengths: list[int], packed: bool) -> None:
    model = make_model(packed, **VARIANTS[variant])
    flat = FlatDecoder(model)
    tokens = torch.tensor([[5, 6, 7], [8, 9, 10], [11, 12, 13]])[:, :k]
    with torch.no_grad():
        memory, (reference, cache) = started_caches(model, lengths)
        for _ in range(3):
            expected = model.decode_hidden(tokens, memory, reference)
            states = flat(tokens, cache)
            torch.testing.assert_close(states, expected, atol=ATOL, rtol=0)
            assert torch.equal(cache.lengths, reference.lengths)
            logits = model.project(expected)
            torch.testing.assert_close(flat.project(states), logits, atol=ATOL, rtol=0)
            tokens = logits.argmax(-1)
    for mine, theirs in zip(cache.self_keys + cache.self_values, reference.self_keys + reference.self_values,
                            strict=True):
        for row, length in enumerate(reference.lengths.tolist()):
            torch.testing.assert_close(mine[row, :, :length], theirs[row, :, :length], atol=ATOL, rtol=0)


def test_passes_after_a_reorder_equal_decode_hidden() -> None:
    """One FlatDecoder over a cache whose rows are reordered and dropped between passes (as beam
    search and finished rows do): each pass masks the padding of the source rows it now holds."""
    model = make_model()
    flat = FlatDecoder(model)
    with torch.no_grad():
        memory, (reference, cache) = started_caches(model, [2, 2, 2])
        tokens = torch.tensor([[5], [6], [7]])
        for index in ([1, 0, 2], [0, 2], [1]):  # the padded row (1) moves, then is dropped
            torch.testing.assert_close(flat(tokens, cache), model.decode_hidden(tokens, memory, reference),
                                       atol=ATOL, rtol=0)
            rows = torch.tensor(index)
            for each in (cache, reference):
                each.reorder(rows)
            memory, tokens = memory.select(rows), tokens[rows]
        torch.testing.assert_close(flat(tokens, cache), model.decode_hidden(tokens, memory, reference),
                                   atol=ATOL, rtol=0)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("widths", [[4, 1, 2], [4, 4, 4], [1, 1, 1]])
def test_ragged_rows_equal_the_padded_pass_at_their_real_tokens(variant: str, widths: list[int]) -> None:
    """Rows with `widths` real tokens of 4 (the rest padding): the states and cached keys and
    values of the real tokens are those of the padded pass, packed or not (by PACK_BELOW)."""
    from polyseq.model.flat import PACK_BELOW

    model = make_model(**VARIANTS[variant])
    flat = FlatDecoder(model)
    tokens = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0], [11, 12, 13, 0]])
    with torch.no_grad():
        memory, (reference, cache) = started_caches(model, [4, 1, 3])
        start = cache.lengths.clone()
        expected = flat(tokens, reference)
        states = flat(tokens, cache, widths)
    assert (sum(widths) <= PACK_BELOW * tokens.numel()) == (widths != [4, 4, 4])  # both paths run
    for row, width in enumerate(widths):
        torch.testing.assert_close(states[row, :width], expected[row, :width], atol=ATOL, rtol=0)
        end = int(start[row]) + width
        for mine, theirs in zip(cache.self_keys + cache.self_values,
                                reference.self_keys + reference.self_values, strict=True):
            torch.testing.assert_close(mine[row, :, :end], theirs[row, :, :end], atol=ATOL, rtol=0)
    assert torch.equal(cache.lengths, reference.lengths)


@pytest.mark.parametrize("packed", PACKED)
@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("padded", [True, False])
def test_encoder_and_cache_equal_the_modules(variant: str, padded: bool, packed: bool) -> None:
    model = make_model(packed, **VARIANTS[variant])
    src = torch.randint(4, 40, (3, 9), generator=torch.Generator().manual_seed(2))
    if padded:
        src[0, 4:] = 0
        src[2, 8:] = 0
    with torch.no_grad():
        expected, memory = model.encode(src), FlatEncoder(model)(src)
        torch.testing.assert_close(memory.states, expected.states, atol=ATOL, rtol=0)
        assert torch.equal(memory.mask, expected.mask)
        mine, theirs = FlatDecoder(model).init_cache(memory, capacity=5), model.init_cache(memory, capacity=5)
    for got, want in zip(mine.cross_keys + mine.cross_values, theirs.cross_keys + theirs.cross_values,
                         strict=True):
        torch.testing.assert_close(got, want, atol=ATOL, rtol=0)
    for got, want in zip(mine.self_keys + mine.self_values, theirs.self_keys + theirs.self_values,
                         strict=True):
        assert got.shape == want.shape and not got.any()
    assert torch.equal(mine.source_mask, theirs.source_mask) and torch.equal(mine.lengths, theirs.lengths)


def test_positions_past_the_model_are_an_error_and_training_mode_is_refused() -> None:
    model = make_model()
    flat = FlatDecoder(model)
    with torch.no_grad():
        memory, (_, cache) = started_caches(model, [4, 1, 3])
        flat(torch.full((3, 12), 5), cache)  # row 0 fills positions 4 to 15, the model's last
        with pytest.raises(ValueError, match="max_positions=16"):
            flat(torch.full((3, 1), 5), cache)
    with pytest.raises(ValueError, match="max_positions=16"):
        FlatEncoder(model)(torch.full((1, 17), 5))
    with pytest.raises(ValueError, match="evaluation-mode"):
        FlatDecoder(model.train())
    with pytest.raises(ValueError, match="evaluation-mode"):
        FlatEncoder(model)


def test_flat_passes_run_only_where_they_compute_what_the_modules_do() -> None:
    class Doubled(torch.nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return 2 * super().forward(x)

    model = make_model()
    assert runs_flat(model) and not runs_flat(model.train()) and not runs_flat(object())
    model.eval()
    handle = model.encoder_layers[0].attention.out.register_forward_pre_hook(lambda module, args: None)
    assert not runs_flat(model)
    handle.remove()
    assert runs_flat(model)
    model.decoder_layers[0].ffn.train()  # its module would drop out
    assert not runs_flat(model)
    model.eval()
    model.decoder_layers[1].ffn.outer = Doubled(64, 32)
    assert not runs_flat(model)
