"""OneTokenDecoder: the flat one-token step computes what `decode_hidden` computes, for every
model variant, with rows at different lengths, and on the same cache."""

from __future__ import annotations

import pytest
import torch

from polyseq.config import (
    Activation,
    EmbeddingNorm,
    EmbeddingScale,
    ModelConfig,
    NormPlacement,
    OutputBias,
    Positions,
)
from polyseq.model.one_token import OneTokenDecoder
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


def make_model(**variant: object) -> Seq2Seq:
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=40, d_model=32, encoder_layers=2, decoder_layers=2, heads=4, ffn_dim=64,
                         dropout=0.0, max_positions=16, **variant)  # type: ignore[arg-type]
    model = Seq2Seq(config).eval()
    with torch.no_grad():  # trained models have non-trivial norms and biases; so must the test
        for name, parameter in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def started_caches(model: Seq2Seq) -> tuple:
    """Two identical caches over a padded source, with rows left at lengths 4, 1 and 3."""
    generator = torch.Generator().manual_seed(1)
    src = torch.randint(4, 40, (3, 9), generator=generator)
    src[1, 5:] = 0
    memory = model.encode(src)
    caches = [model.init_cache(memory, capacity=2) for _ in range(2)]  # too small: must grow
    prefix = torch.randint(4, 40, (3, 4), generator=generator)
    for cache in caches:
        model.decode_hidden(prefix, memory, cache)
        cache.truncate(torch.tensor([4, 1, 3]))
    return memory, caches


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_steps_equal_decode_hidden_and_project(variant: str) -> None:
    model = make_model(**VARIANTS[variant])
    fast = OneTokenDecoder(model)
    tokens = torch.tensor([5, 6, 7])
    with torch.no_grad():
        memory, (reference, cache) = started_caches(model)
        for _ in range(6):
            expected = model.decode_hidden(tokens[:, None], memory, reference)[:, 0]
            states = fast(tokens, cache)
            torch.testing.assert_close(states, expected, atol=ATOL, rtol=0)
            assert torch.equal(cache.lengths, reference.lengths)
            tokens = model.project(expected).argmax(-1)
    for mine, theirs in zip(cache.self_keys + cache.self_values, reference.self_keys + reference.self_values,
                            strict=True):
        for row, length in enumerate(reference.lengths.tolist()):
            torch.testing.assert_close(mine[row, :, :length], theirs[row, :, :length], atol=ATOL, rtol=0)


def test_rows_that_do_not_advance_keep_their_length_and_their_cache() -> None:
    model = make_model()
    fast = OneTokenDecoder(model)
    with torch.no_grad():
        memory, (reference, cache) = started_caches(model)
        fast(torch.tensor([5, 6, 7]), cache, advance=torch.tensor([True, False, True]))
        assert cache.lengths.tolist() == [5, 1, 4]
        # row 1 goes on as if the waiting step had never happened
        expected = model.decode_hidden(torch.tensor([[8], [9], [10]]), memory, reference)[1]
        states = fast(torch.tensor([8, 9, 10]), cache)
        torch.testing.assert_close(states[1], expected[0], atol=ATOL, rtol=0)


def test_positions_past_the_model_are_an_error_and_training_mode_is_refused() -> None:
    model = make_model()
    fast = OneTokenDecoder(model)
    with torch.no_grad():
        memory, (_, cache) = started_caches(model)
        for _ in range(12):  # row 0 fills positions 4 to 15, the model's last
            fast(torch.tensor([5, 6, 7]), cache)
        with pytest.raises(ValueError, match="max_positions=16"):
            fast(torch.tensor([5, 6, 7]), cache)
    with pytest.raises(ValueError, match="evaluation-mode"):
        OneTokenDecoder(model.train())
