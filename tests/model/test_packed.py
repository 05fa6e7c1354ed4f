"""Packed weights (oneDNN's layout) give the products of the weights they were packed from, are
used only while those weights hold the same values, leave small weights and other dtypes to
PyTorch's product, and belong to the model that decodes with them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from polyseq.config import ModelConfig
from polyseq.model.flat import FlatDecoder
from polyseq.model.layout import for_decoding
from polyseq.model.packed import PackedWeights, Product, packing_available
from polyseq.model.transformer import Seq2Seq
from polyseq.translator import Translator

pytestmark = pytest.mark.skipif(not packing_available(), reason="this PyTorch build has no oneDNN")


def linear_weights(model: nn.Module) -> list[nn.Parameter]:
    return [m.weight for m in model.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("bias", [True, False])
def test_a_packed_product_equals_the_linear_layer(bias: bool) -> None:
    torch.manual_seed(0)
    linear = nn.Linear(64, 96, bias=bias)
    product = Product(linear.weight, linear.bias, PackedWeights(linear, min_elements=0), min_rows=1)
    assert product.packed is not None
    with torch.inference_mode():
        for rows in (1, 2, 5, 33):
            states = torch.randn(rows, 3, 64)[:, 1]  # rows of a wider tensor: not contiguous
            torch.testing.assert_close(product(states), linear(states), rtol=0, atol=1e-5)


def test_a_product_that_needs_gradients_leaves_the_packed_weight_alone() -> None:
    linear = nn.Linear(64, 96)
    Product(linear.weight, linear.bias, PackedWeights(linear, min_elements=0), min_rows=1)(
        torch.randn(4, 64)).sum().backward()
    assert linear.weight.grad is not None and linear.bias.grad is not None


def test_a_packed_weight_is_dropped_once_its_parameter_changes() -> None:
    linear = nn.Linear(64, 96)
    packed = PackedWeights(linear, min_elements=0)
    assert packed.get(linear.weight) is not None
    with torch.no_grad():
        linear.weight.mul_(2.0)  # what an optimizer step does: in place
    assert packed.get(linear.weight) is None and Product(linear.weight, linear.bias, packed).packed is None
    packed = PackedWeights(linear, min_elements=0)
    assert packed.get(linear.weight) is not None
    states = torch.randn(4, 64)
    with torch.inference_mode():
        torch.testing.assert_close(Product(linear.weight, linear.bias, packed)(states), linear(states),
                                   rtol=0, atol=1e-5)
    linear.weight.data = torch.randn(96, 64)  # new storage
    assert packed.get(linear.weight) is None
    assert PackedWeights(linear, min_elements=0).get(linear.weight) is not None
    converted = nn.Linear(64, 96)
    packed = PackedWeights(converted, min_elements=0)
    converted.half().float()  # new storage, same version
    assert packed.get(converted.weight) is None
    assert packed.get(nn.Linear(64, 96).weight) is None  # another model's weight


def test_decoding_under_autocast_keeps_to_the_module_product() -> None:
    linear = nn.Linear(64, 96)
    packed = PackedWeights(linear, min_elements=0)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
        states = torch.randn(4, 64)
        assert Product(linear.weight, linear.bias, packed, min_rows=1)(states).dtype == linear(states).dtype
        half_states = states.bfloat16()
        assert Product(linear.weight, linear.bias, packed, min_rows=1)(half_states).dtype == torch.bfloat16


def test_only_large_float32_cpu_weights_and_a_tied_output_layer_are_packed() -> None:
    config = ModelConfig(vocab_size=300, d_model=32, encoder_layers=1, decoder_layers=1, heads=2,
                         ffn_dim=64, dropout=0.0, max_positions=64)
    tied = Seq2Seq(config)
    packed = PackedWeights(tied, min_elements=32 * 64)
    assert {tuple(w.shape) for w in linear_weights(tied) if packed.get(w) is not None} == {
        (96, 32), (64, 32), (32, 64)}  # the fused q/k/v and the feed-forward's two layers
    assert packed.get(tied.embed.weight) is not None  # 300 x 32, the output layer
    untied = Seq2Seq(replace(config, tie_embeddings=False))
    packed = PackedWeights(untied, min_elements=0)
    assert packed.get(untied.embed.weight) is None and packed.get(untied.output.weight) is not None
    half = Seq2Seq(config).to(torch.bfloat16)
    assert len(PackedWeights(half, min_elements=0)) == 0


def test_for_decoding_packs_a_copy_and_leaves_the_callers_model_alone(tiny_model_dir: Path) -> None:
    config = ModelConfig(vocab_size=4096, d_model=64, encoder_layers=1, decoder_layers=1, heads=2,
                         ffn_dim=128, dropout=0.0, max_positions=64)
    mine = Seq2Seq(config)
    layout = [(w.data_ptr(), w.stride()) for w in mine.parameters()]
    model = for_decoding(mine)
    assert model is not mine and mine.packed is None
    assert [(w.data_ptr(), w.stride()) for w in mine.parameters()] == layout  # not re-laid
    assert model.packed.get(model.embed.weight) is not None  # 4096 x 64 = 2^18: the output layer
    assert all(model.packed.get(w) is None for w in linear_weights(model))  # the small ones
    assert for_decoding(model) is model  # laid out already
    translator = Translator(mine, Translator.load(tiny_model_dir).tokenizer)
    assert translator.model is not mine and mine.packed is None
    assert translator.model.packed.get(translator.model.embed.weight) is not None
    for a, b in zip(mine.parameters(), translator.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_flat_passes_on_packed_weights_give_the_module_logits(tiny_model_dir: Path) -> None:
    model = Translator.load(tiny_model_dir).model
    model.packed = PackedWeights(model, min_elements=0)
    src, tgt = torch.tensor([[5, 6, 7, 8, 2]]), torch.tensor([[3, 9, 10, 11]])
    with torch.inference_mode():
        expected = model(src, tgt)
        flat = FlatDecoder(model)
        assert flat.output.packed is not None and flat.layers[0].qkv.packed is not None
        cache = flat.init_cache(model.encode(src), capacity=8)
        torch.testing.assert_close(flat.project(flat(tgt, cache)), expected, rtol=0, atol=1e-4)
