"""Packed weights (oneDNN's layout) give the products of the weights they were packed from, are
used only while those weights hold the same values, and leave small weights and other dtypes to
PyTorch's product."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from polyseq.config import ModelConfig
from polyseq.model.flat import FlatDecoder
from polyseq.model.layout import for_decoding
from polyseq.model.packed import Product, pack_weights, packed, packing_available, unpack_weights
from polyseq.model.transformer import Seq2Seq
from polyseq.translator import Translator

pytestmark = pytest.mark.skipif(not packing_available(), reason="this PyTorch build has no oneDNN")


def linear_weights(model: nn.Module) -> list[nn.Parameter]:
    return [m.weight for m in model.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("bias", [True, False])
def test_a_packed_product_equals_the_linear_layer(bias: bool) -> None:
    torch.manual_seed(0)
    linear = pack_weights(nn.Linear(64, 96, bias=bias), min_elements=0)
    product = Product(linear.weight, linear.bias, min_rows=1)
    assert product.packed is not None
    with torch.inference_mode():
        for rows in (1, 2, 5, 33):
            states = torch.randn(rows, 3, 64)[:, 1]  # rows of a wider tensor: not contiguous
            torch.testing.assert_close(product(states), linear(states), rtol=0, atol=1e-5)


def test_a_product_that_needs_gradients_leaves_the_packed_weight_alone() -> None:
    linear = pack_weights(nn.Linear(64, 96), min_elements=0)
    Product(linear.weight, linear.bias, min_rows=1)(torch.randn(4, 64)).sum().backward()
    assert linear.weight.grad is not None and linear.bias.grad is not None


def test_a_packed_weight_is_dropped_once_its_parameter_changes() -> None:
    linear = pack_weights(nn.Linear(64, 96), min_elements=0)
    assert packed(linear.weight) is not None
    with torch.no_grad():
        linear.weight.mul_(2.0)  # what an optimizer step does: in place
    assert packed(linear.weight) is None and Product(linear.weight, linear.bias).packed is None
    assert packed(pack_weights(linear, min_elements=0).weight) is not None
    states = torch.randn(4, 64)
    with torch.inference_mode():
        torch.testing.assert_close(Product(linear.weight, linear.bias)(states), linear(states),
                                   rtol=0, atol=1e-5)
    linear.weight.data = torch.randn(96, 64)  # new storage
    assert packed(linear.weight) is None
    assert packed(pack_weights(linear, min_elements=0).weight) is not None
    assert packed(unpack_weights(linear).weight) is None
    converted = pack_weights(nn.Linear(64, 96), min_elements=0).half().float()  # new storage, same version
    assert packed(converted.weight) is None


def test_decoding_under_autocast_keeps_to_the_module_product() -> None:
    linear = pack_weights(nn.Linear(64, 96), min_elements=0)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
        states = torch.randn(4, 64)
        assert Product(linear.weight, linear.bias, min_rows=1)(states).dtype == linear(states).dtype
        half_states = states.bfloat16()
        assert Product(linear.weight, linear.bias, min_rows=1)(half_states).dtype == torch.bfloat16


def test_only_large_float32_cpu_weights_and_a_tied_output_layer_are_packed() -> None:
    config = ModelConfig(vocab_size=300, d_model=32, encoder_layers=1, decoder_layers=1, heads=2,
                         ffn_dim=64, dropout=0.0, max_positions=64)
    tied = pack_weights(Seq2Seq(config), min_elements=32 * 64)
    assert {tuple(w.shape) for w in linear_weights(tied) if packed(w) is not None} == {
        (96, 32), (64, 32), (32, 64)}  # the fused q/k/v and the feed-forward's two layers
    assert packed(tied.embed.weight) is not None  # 300 x 32, the output layer
    untied = pack_weights(Seq2Seq(replace(config, tie_embeddings=False)), min_elements=0)
    assert packed(untied.embed.weight) is None and packed(untied.output.weight) is not None
    half = pack_weights(Seq2Seq(config).to(torch.bfloat16), min_elements=0)
    assert all(packed(w) is None for w in linear_weights(half))


def test_for_decoding_and_the_translator_pack_the_large_weights(tiny_model_dir: Path) -> None:
    config = ModelConfig(vocab_size=4096, d_model=64, encoder_layers=1, decoder_layers=1, heads=2,
                         ffn_dim=128, dropout=0.0, max_positions=64)
    model = for_decoding(Seq2Seq(config))
    assert packed(model.embed.weight) is not None  # 4096 x 64 = 2^18 elements: the output layer
    assert all(packed(w) is None for w in linear_weights(model))  # the small ones
    translator = Translator(Seq2Seq(config), Translator.load(tiny_model_dir).tokenizer)
    assert packed(translator.model.embed.weight) is not None


def test_flat_passes_on_packed_weights_give_the_module_logits(tiny_model_dir: Path) -> None:
    model = Translator.load(tiny_model_dir).model
    pack_weights(model, min_elements=0)
    src, tgt = torch.tensor([[5, 6, 7, 8, 2]]), torch.tensor([[3, 9, 10, 11]])
    with torch.inference_mode():
        expected = model(src, tgt)
        flat = FlatDecoder(model)
        assert flat.output.packed is not None and flat.layers[0].qkv.packed is not None
        cache = flat.init_cache(model.encode(src), capacity=8)
        torch.testing.assert_close(flat.project(flat(tgt, cache)), expected, rtol=0, atol=1e-4)
