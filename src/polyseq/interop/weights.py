"""Weight maps between polyseq's Seq2Seq and Hugging Face's BART-family encoder-decoders.

Marian, Pegasus, M2M-100 (and NLLB), BART and mBART all name their tensors the same way
(`model.encoder.layers.N.self_attn.q_proj.weight`, ...). polyseq fuses q/k/v of self-attention
into one `qkv` Linear and k/v of cross-attention into `kv`, so import concatenates and export
splits. Every map is a pure function of a state dict: nothing is computed, only renamed, joined,
split or permuted, so a round trip gives bit-identical tensors.

The residual-stream permutation: polyseq's sinusoidal table interleaves sin and cos (sin at even
dimensions), Marian's and Pegasus's put all sines first. Both use the same frequencies, so the two
tables differ only by an order of the d_model dimensions. Reordering those dimensions in every
tensor that reads or writes the residual stream gives a model that computes exactly the same
function (LayerNorm does not depend on the order of its inputs), which is how a Marian checkpoint
runs on polyseq's table and a polyseq model runs as a Pegasus one.
"""

from __future__ import annotations

import torch
from torch import Tensor

from polyseq.config import ModelConfig, NormPlacement, Positions

StateDict = dict[str, Tensor]

# polyseq module path -> HF module path, per layer (the prefix `encoder_layers.N.` etc. is added)
_ENCODER_LAYER = {
    "attention.out": "self_attn.out_proj",
    "attention_residual.norm": "self_attn_layer_norm",
    "ffn.inner": "fc1",
    "ffn.outer": "fc2",
    "ffn_residual.norm": "final_layer_norm",
}
_DECODER_LAYER = {
    "self_attention.out": "self_attn.out_proj",
    "self_residual.norm": "self_attn_layer_norm",
    "cross_attention.q": "encoder_attn.q_proj",
    "cross_attention.out": "encoder_attn.out_proj",
    "cross_residual.norm": "encoder_attn_layer_norm",
    "ffn.inner": "fc1",
    "ffn.outer": "fc2",
    "ffn_residual.norm": "final_layer_norm",
}
_SIDES = (("encoder_layers", "model.encoder.layers", _ENCODER_LAYER, "attention"),
          ("decoder_layers", "model.decoder.layers", _DECODER_LAYER, "self_attention"))


class WeightMapError(ValueError):
    """A checkpoint lacks a tensor the architecture needs, or has one of the wrong shape."""


def _take(weights: StateDict, name: str, where: str) -> Tensor:
    if name not in weights:
        raise WeightMapError(f"{where}: tensor {name!r} is missing")
    return weights[name]


def _layer_count(config: ModelConfig, side: str) -> int:
    return config.encoder_layers if side == "encoder_layers" else config.decoder_layers


def _global_names(config: ModelConfig) -> dict[str, str]:
    """polyseq name -> HF name for the tensors outside the layers that this config has."""
    names: dict[str, str] = {}
    if config.norm is NormPlacement.PRE:
        names |= {"encoder_norm": "model.encoder.layer_norm", "decoder_norm": "model.decoder.layer_norm"}
    if config.embedding_norm.value != "none":
        names |= {"encoder_embedding_norm": "model.encoder.layernorm_embedding",
                  "decoder_embedding_norm": "model.decoder.layernorm_embedding"}
    mapped = {f"{ours}.{kind}": f"{theirs}.{kind}" for ours, theirs in names.items()
              for kind in ("weight", "bias")}
    if config.positions is Positions.LEARNED:
        mapped |= {"encoder_positions.weight": "model.encoder.embed_positions.weight",
                   "decoder_positions.weight": "model.decoder.embed_positions.weight"}
    if not config.tie_embeddings:
        mapped["output.weight"] = "lm_head.weight"
    return mapped


_EMBEDDING_NAMES = ("model.shared.weight", "model.encoder.embed_tokens.weight",
                   "model.decoder.embed_tokens.weight")


def _embedding(weights: StateDict, where: str) -> Tensor:
    """The shared token embedding, under whichever of its tied names the checkpoint kept."""
    found = [weights[name] for name in _EMBEDDING_NAMES if name in weights]
    if not found:
        raise WeightMapError(f"{where}: no token embedding (model.shared.weight) found")
    if any(not torch.equal(found[0], other) for other in found[1:]):
        raise WeightMapError(f"{where}: the encoder and decoder have different token embeddings; "
                             "polyseq shares one embedding between them")
    return found[0]


def from_hf(weights: StateDict, config: ModelConfig, permute: bool, where: str) -> StateDict:
    """A polyseq state dict from an HF BART-family state dict (keys with the `model.` prefix)."""
    ours: StateDict = {"embed.weight": _embedding(weights, where)}
    for side, prefix, table, self_name in _SIDES:
        for index in range(_layer_count(config, side)):
            hf, pq = f"{prefix}.{index}.", f"{side}.{index}."
            for kind in ("weight", "bias"):
                qkv = [_take(weights, f"{hf}self_attn.{p}_proj.{kind}", where) for p in "qkv"]
                ours[f"{pq}{self_name}.qkv.{kind}"] = torch.cat(qkv, dim=0)
                for mine, theirs in table.items():
                    ours[f"{pq}{mine}.{kind}"] = _take(weights, f"{hf}{theirs}.{kind}", where)
                if side == "decoder_layers":
                    kv = [_take(weights, f"{hf}encoder_attn.{p}_proj.{kind}", where) for p in "kv"]
                    ours[f"{pq}cross_attention.kv.{kind}"] = torch.cat(kv, dim=0)
    for mine, theirs in _global_names(config).items():
        ours[mine] = _take(weights, theirs, where)
    if "final_logits_bias" in weights and config.output_bias.value == "bias":
        ours["output_bias"] = weights["final_logits_bias"].reshape(-1)
    ours = {name: tensor.detach().to(torch.float32).contiguous() for name, tensor in ours.items()}
    return permute_residual(ours, config.d_model, to_interleaved=True) if permute else ours


def to_hf(state: StateDict, config: ModelConfig, permute: bool) -> StateDict:
    """An HF BART-family state dict (for `*ForConditionalGeneration`) from a polyseq one."""
    state = permute_residual(state, config.d_model, to_interleaved=False) if permute else state
    d = config.d_model
    # all three names: untied HF models (tie_word_embeddings=false) do not tie them for us
    theirs: StateDict = {name: state["embed.weight"] for name in _EMBEDDING_NAMES}
    for side, prefix, table, self_name in _SIDES:
        for index in range(_layer_count(config, side)):
            hf, pq = f"{prefix}.{index}.", f"{side}.{index}."
            for kind in ("weight", "bias"):
                q, k, v = state[f"{pq}{self_name}.qkv.{kind}"].split(d, dim=0)
                theirs |= {f"{hf}self_attn.q_proj.{kind}": q, f"{hf}self_attn.k_proj.{kind}": k,
                           f"{hf}self_attn.v_proj.{kind}": v}
                for mine, hf_name in table.items():
                    theirs[f"{hf}{hf_name}.{kind}"] = state[f"{pq}{mine}.{kind}"]
                if side == "decoder_layers":
                    k, v = state[f"{pq}cross_attention.kv.{kind}"].split(d, dim=0)
                    theirs |= {f"{hf}encoder_attn.k_proj.{kind}": k, f"{hf}encoder_attn.v_proj.{kind}": v}
    for mine, hf_name in _global_names(config).items():
        theirs[hf_name] = state[mine]
    theirs["final_logits_bias"] = (state["output_bias"] if "output_bias" in state
                                   else torch.zeros(config.vocab_size))[None, :]  # (1, V)
    return {name: tensor.detach().contiguous().clone() for name, tensor in theirs.items()}


def interleave_order(dim: int) -> Tensor:
    """Index such that interleaved[i] = halves[order[i]]: sin_j sits at 2j in one, at j in the other."""
    half = torch.arange(dim // 2)
    return torch.stack([half, half + dim // 2], dim=1).reshape(-1)  # (D,)


def _residual_axes(name: str) -> tuple[int, ...]:
    """The axes of a polyseq tensor that index the residual stream (d_model) dimensions."""
    if name in ("embed.weight", "output.weight", "encoder_positions.weight", "decoder_positions.weight") \
            or name.endswith(
        (".qkv.weight", ".q.weight", ".kv.weight", ".inner.weight")
    ):
        return (1,)  # reads the residual stream: (out_features, D)
    if name.endswith((".out.weight", ".out.bias", ".outer.weight", ".outer.bias")):
        return (0,)  # writes to it: (D, in_features) and (D,)
    if "norm" in name:
        return (0,)  # LayerNorm weight and bias (D,)
    return ()  # q/k/v, inner biases and the output bias live in other spaces


def permute_residual(state: StateDict, dim: int, *, to_interleaved: bool) -> StateDict:
    """Reorder the d_model dimensions of every tensor on the residual stream (see module doc)."""
    order = interleave_order(dim)
    if not to_interleaved:
        order = torch.argsort(order)
    permuted: StateDict = {}
    for name, tensor in state.items():
        for axis in _residual_axes(name):
            if tensor.shape[axis] != dim:
                raise WeightMapError(f"{name}: axis {axis} has size {tensor.shape[axis]}, expected {dim}")
            tensor = tensor.index_select(axis, order)
        permuted[name] = tensor
    return permuted
