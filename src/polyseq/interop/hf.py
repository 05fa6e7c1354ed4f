"""Import local Hugging Face checkpoints into polyseq model directories, and export polyseq models
to directories that transformers' `from_pretrained` loads.

    import_hf("opus-mt-en-de/", "models/opus-en-de")   # Marian, M2M-100/NLLB, BART, mBART, Pegasus
    export_hf("models/multi30k", "exported/multi30k")    # -> PegasusForConditionalGeneration, ...

Import reads config.json, the tokenizer files and model.safetensors (or a sharded index; a
pytorch_model.bin only through `torch.load(weights_only=True)`), and never fetches anything: it does
not even need transformers. Export builds the closest transformers class (see families.py), loads
the mapped weights into it and saves it with `save_pretrained`; it needs transformers. An imported
model goes back with its own config.json settings, generation_config.json and logits bias.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from polyseq.config import ModelConfig, OutputBias
from polyseq.interop.families import (
    TRAITS,
    Family,
    InteropError,
    config_from_hf,
    family_from_hf,
    family_of,
    hf_config_values,
)
from polyseq.interop.hub import fetch, is_hub_id
from polyseq.interop.tokenizers import describe_hf_tokenizer
from polyseq.interop.weights import from_hf, to_hf
from polyseq.model.checkpoint import (
    check_output_directory,
    load_metadata,
    load_model,
    save_model_files,
    write_directory_atomic,
)
from polyseq.model.transformer import Seq2Seq

EXPORT_NOTE = "polyseq.json"  # written into exported directories: where they came from
HF_SETTINGS = ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")
GENERATION_FILE = "generation_config.json"
# config.json keys that an export writes anew: its own class, and float32 weights
NOT_CARRIED = ("architectures", "model_type", "transformers_version", "dtype", "torch_dtype", "_name_or_path")


def _read_object(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InteropError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise InteropError(f"{path} must hold a JSON object")
    return data


def read_hf_files(directory: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """config.json and generation_config.json (None when there is none), as they are."""
    path = directory / "config.json"
    if not path.is_file():
        raise InteropError(f"{path} is missing: not a Hugging Face model directory")
    generation = directory / GENERATION_FILE
    return _read_object(path), _read_object(generation) if generation.is_file() else None


def read_hf_config(directory: Path) -> dict[str, Any]:
    """config.json, with the settings (bad_words_ids, decoder start) that only generation_config.json has."""
    config, generation = read_hf_files(directory)
    return _merged(config, generation)


def _merged(config: dict[str, Any], generation: dict[str, Any] | None) -> dict[str, Any]:
    extra = {k: v for k, v in (generation or {}).items() if k != "transformers_version"}
    return {**extra, **config}


def read_hf_weights(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint, with the `model.` prefix that the *ForConditionalGeneration
    classes use (a bare base-model checkpoint gets it added)."""
    single, index = directory / "model.safetensors", directory / "model.safetensors.index.json"
    binary = directory / "pytorch_model.bin"
    try:
        if single.is_file():
            weights = load_file(str(single))
        elif index.is_file():
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            weights = {k: v for shard in shards for k, v in load_file(str(directory / shard)).items()}
        elif binary.is_file():  # weights_only: a pickle that can only hold tensors, never code
            weights = torch.load(binary, map_location="cpu", weights_only=True)
        else:
            raise InteropError(f"{directory}: no model.safetensors, sharded index or pytorch_model.bin")
    except (SafetensorError, OSError, RuntimeError, KeyError, json.JSONDecodeError) as error:
        raise InteropError(f"{directory}: cannot read the weights: {error}") from None
    if not any(name.startswith("model.") for name in weights):
        weights = {f"model.{name}": tensor for name, tensor in weights.items()}
    return weights


def _suppressed_tokens(hf: dict[str, Any], source: Path) -> list[int]:
    """Single tokens that generation must never produce (Marian's <pad>, via bad_words_ids), but
    not the padding that polyseq's export of its own model bans: polyseq's strategies leave
    padding out themselves, and the model comes home as it went out, without a bias for it."""
    ids = {int(ids[0]) for ids in hf.get("bad_words_ids") or [] if len(ids) == 1}
    if _export_note(source).get("padding_banned"):
        ids.discard(int(hf["pad_token_id"]))
    return sorted(ids)


def _export_note(source: Path) -> dict[str, Any]:
    """What polyseq's export wrote about the directory (empty for others' checkpoints)."""
    note = source / EXPORT_NOTE
    return _read_object(note) if note.is_file() else {}


def import_hf(source: str | Path, output: str | Path, *, with_tokenizer: bool = True,
              overwrite: bool = False) -> Path:
    """Convert the HF checkpoint directory `source` (or Hub repository, `org/name[@revision]`,
    see polyseq.interop.hub) into the polyseq model directory `output` (a polyseq model already
    there is replaced only with `overwrite`; other files never).

    `with_tokenizer=False` imports the weights alone (a model used with token ids only)."""
    hub = str(source) if is_hub_id(str(source)) else None
    check_output_directory(Path(output), [] if hub else [Path(source)], "polyseq", overwrite)
    source = fetch(hub) if hub else Path(source)
    if not source.is_dir():
        raise InteropError(f"{source} is not a directory; pass a local Hugging Face model directory "
                           "or a Hub repository id (org/name)")
    hf_files = read_hf_files(source)
    hf = _merged(*hf_files)
    family = family_from_hf(hf, str(source))
    model, suppressed = _import_model(source, hf, family)
    tokenizer = _import_tokenizer_info(source, hf, family) if with_tokenizer else {"kind": "none"}
    _check_ids_fit(tokenizer, model.config.vocab_size, source)
    # the tokenizer's settings files travel along, so that an export can give them back
    carried = [*tokenizer.get("files", []), *(n for n in HF_SETTINGS if (source / n).is_file())]
    # the original files and bias values as they were, so that an export can write them back
    metadata = {"imported_from": {"path": str(source.resolve()), "model_type": family.value,
                                  "architectures": hf.get("architectures", []),
                                  **({"hub": hub, "commit": source.name} if hub else {})},
                "hf_config": hf_files[0], "hf_generation_config": hf_files[1], "tokenizer": tokenizer,
                "suppressed_tokens": list(suppressed), "suppressed_bias": list(suppressed.values()),
                "hf_files": carried}

    def fill(directory: Path) -> None:
        save_model_files(directory, model, metadata)
        if tokenizer["kind"] == "polyseq":
            shutil.copy2(source / "tokenizer.model", directory / "tokenizer.model")
        for name in carried:
            shutil.copy2(source / name, directory / name)

    return write_directory_atomic(output, fill)


def _import_model(source: Path, hf: dict[str, Any], family: Family) -> tuple[Seq2Seq, dict[int, float]]:
    """The polyseq model holding the checkpoint's weights, and the token ids it suppresses with
    their original bias values."""
    weights = read_hf_weights(source)
    bias = weights.get("final_logits_bias")
    ids = _suppressed_tokens(hf, source)
    has_bias = (bias is not None and bool(bias.any())) or bool(ids)
    config = config_from_hf(hf, family, has_bias, str(source))
    suppressed: dict[int, float] = {}
    if ids:
        # polyseq's strategies know nothing of bad_words_ids: a -inf bias makes every one of them
        # respect it, as transformers does; an export puts the original values back
        bias = torch.zeros(1, config.vocab_size) if bias is None else bias.clone()
        suppressed = {i: float(bias[0, i]) for i in ids}
        bias[0, ids] = float("-inf")
        weights["final_logits_bias"] = bias
    state = from_hf(weights, config, TRAITS[family].halves_layout, str(source))
    model = Seq2Seq(config)
    expected = {k for k in model.state_dict() if not (config.tie_embeddings and k == "output.weight")}
    if set(state) != expected:
        missing, unexpected = sorted(expected - set(state))[:5], sorted(set(state) - expected)[:5]
        raise InteropError(f"{source}: weights do not fit the architecture: missing {missing}, "
                           f"unexpected {unexpected}")
    model.load_state_dict(state, strict=False)
    return model.eval(), suppressed


def _check_ids_fit(tokenizer: dict[str, Any], vocab_size: int, source: Path) -> None:
    """Every special and language id of the tokenizer must be a row of the embedding."""
    specials = ("pad_id", "eos_id", "unk_id", "decoder_start_id")
    ids = [*tokenizer.get("languages", {}).values(), *(tokenizer[k] for k in specials if k in tokenizer)]
    if ids and max(ids) >= vocab_size:
        raise InteropError(f"{source}: the tokenizer uses id {max(ids)} but the model has only "
                           f"vocab_size={vocab_size} embeddings; the tokenizer files belong to another model")


def _import_tokenizer_info(source: Path, hf: dict[str, Any], family: Family) -> dict[str, Any]:
    if _export_note(source).get("tokenizer") == "polyseq":
        return {"kind": "polyseq"}  # a polyseq export coming home: its own tokenizer.model
    return describe_hf_tokenizer(source, family.value, hf)


# ------------------------------------------------------------------------------------------ export


def _config_values(metadata: dict[str, Any], config: ModelConfig, family: Family) -> dict[str, Any]:
    """The HF config: an imported model's own config.json (its special ids, tokenizer_class, ...)
    with the architecture fields of `config`; polyseq's special ids for polyseq's own models."""
    original = metadata.get("hf_config") or {}
    if original:
        base = {key: value for key, value in original.items() if key not in NOT_CARRIED}
    else:
        from polyseq.text.tokenizer import Tokenizer

        # polyseq starts the decoder with the target tag: callers pass decoder_input_ids=[[<2xx>]];
        # bos is the fallback start. polyseq never forces EOS at the length limit.
        base = {"bos_token_id": Tokenizer.bos_id, "eos_token_id": Tokenizer.eos_id,
                "decoder_start_token_id": Tokenizer.bos_id, "forced_eos_token_id": None}
    return {**base, **hf_config_values(config, family)}


def _unsuppressed(model: Seq2Seq, metadata: dict[str, Any]) -> tuple[dict[str, torch.Tensor], ModelConfig]:
    """The state and config to export: import put -inf at the suppressed ids for polyseq's
    strategies, but transformers suppresses them itself (bad_words_ids travels in the config), so
    they get their original bias values back, and a bias that was all zero is dropped again."""
    state, config = model.state_dict(), model.config
    ids, values = metadata.get("suppressed_tokens") or [], metadata.get("suppressed_bias")
    if not ids or values is None:  # nothing suppressed, or imported before the values were kept
        return state, config
    state = {**state, "output_bias": state["output_bias"].clone()}
    state["output_bias"][ids] = torch.tensor(values, dtype=state["output_bias"].dtype)
    if not state["output_bias"].any():
        state.pop("output_bias")
        config = replace(config, output_bias=OutputBias.NONE)
    return state, config


def _write_back_hf_files(directory: Path, metadata: dict[str, Any]) -> None:
    """An imported model's config.json keys that transformers did not keep (legacy generation
    settings such as bad_words_ids, which it still reads from there), and its generation_config.json."""
    if "hf_generation_config" not in metadata:  # polyseq's own model, or imported before it was kept
        return
    path = directory / "config.json"
    written = _read_object(path)
    dropped = {k: v for k, v in metadata["hf_config"].items() if k not in written and k not in NOT_CARRIED}
    path.write_text(json.dumps({**written, **dropped}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    generation, target = metadata["hf_generation_config"], directory / GENERATION_FILE
    if generation is None:  # none, as in the original: transformers reads config.json's settings
        target.unlink(missing_ok=True)
    else:
        target.write_text(json.dumps(generation, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _ban_padding(hf_model: Any, metadata: dict[str, Any]) -> bool:
    """Ban padding in the generation config of polyseq's own model, as polyseq's strategies never
    generate it (`DecodeInput.banned_id`), so that transformers decodes alike where the model
    favours it; not where padding is EOS or a ban is already there. An imported model keeps its
    own generation settings (written back as they came). Whether it banned padding."""
    generation, config = hf_model.generation_config, hf_model.config
    if (metadata.get("hf_config") or generation.bad_words_ids or getattr(config, "bad_words_ids", None)
            or config.pad_token_id is None or config.pad_token_id == config.eos_token_id):
        return False
    generation.bad_words_ids = [[int(config.pad_token_id)]]
    return True


def export_hf(model_dir: str | Path, output: str | Path, *, overwrite: bool = False) -> Path:
    """Write the polyseq model in `model_dir` as a transformers directory at `output` (a
    transformers model already there is replaced only with `overwrite`; other files never)."""
    try:
        import transformers
    except ImportError:
        raise InteropError("exporting needs transformers: pip install 'polyseq[hf]'") from None
    model_dir = Path(model_dir)
    check_output_directory(Path(output), [model_dir], "hf", overwrite)
    model, metadata = load_model(model_dir), load_metadata(model_dir)
    state, config = _unsuppressed(model, metadata)
    family = family_of(config)
    traits = TRAITS[family]
    hf_config = getattr(transformers, traits.config_class)(**_config_values(metadata, config, family))
    hf_model = getattr(transformers, traits.model_class)(hf_config).eval()
    state = to_hf(state, config, traits.halves_layout)
    if not traits.logits_bias:
        state.pop("final_logits_bias")
    missing, unexpected = hf_model.load_state_dict(state, strict=False)
    allowed = ("embed_positions", "embed_tokens", "lm_head")  # computed tables and tied copies
    missing = [name for name in missing if not any(part in name for part in allowed)]
    if missing or unexpected:
        raise InteropError(f"export to {traits.model_class}: missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]}")
    if config.tie_embeddings:
        hf_model.tie_weights()
    padding_banned = _ban_padding(hf_model, metadata)
    info = metadata.get("tokenizer") or {"kind": "polyseq"}

    def fill(directory: Path) -> None:
        hf_model.save_pretrained(directory)
        if info["kind"] == "polyseq":
            from polyseq.interop.hf_tokenizer import write_hf_tokenizer

            write_hf_tokenizer(model_dir, directory)
        else:
            for name in metadata.get("hf_files", info.get("files", [])):
                shutil.copy2(model_dir / name, directory / name)
        _write_back_hf_files(directory, metadata)
        note = {"exported_by": "polyseq", "family": family.value, "tokenizer": info["kind"],
                "residual_permuted": traits.halves_layout and info["kind"] == "polyseq",
                "padding_banned": padding_banned}
        (directory / EXPORT_NOTE).write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")

    return write_directory_atomic(output, fill)

