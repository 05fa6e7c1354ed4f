"""Checkpoints on the Hugging Face Hub: `polyseq convert Helsinki-NLP/opus-mt-en-de OUT` fetches
what an import reads (configuration, weights, tokenizer files) with huggingface_hub, into its
cache as transformers' `from_pretrained` does, and imports from there. `org/name@REVISION` pins a
branch, tag or commit; HF_HUB_OFFLINE=1 reads the cache alone, HF_HOME or HF_HUB_CACHE say where it
is, HF_TOKEN opens gated models. A name that is a local directory is always the directory.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from polyseq.interop.families import InteropError

# an "org/name" repository id, with an optional "@revision"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(?:@[\w./-]+)?$")
# the weights, best first: the first a repository has is the one fetched
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
# what an import may read besides them (each family's tokenizer files; none is required here)
_OTHERS = ("generation_config.json", "tokenizer_config.json", "special_tokens_map.json",
           "added_tokens.json", "source.spm", "target.spm", "vocab.json", "sentencepiece.bpe.model",
           "tokenizer.json")


def is_hub_id(name: str) -> bool:
    """Whether `name` reads as a Hub repository id rather than a path that exists here."""
    return bool(_REPO_ID.match(name)) and not Path(name).exists()


def fetch(name: str) -> Path:
    """The local snapshot of the Hub repository `name` (`org/model[@revision]`) holding the files
    an import reads, fetched into huggingface_hub's cache unless they are there already."""
    try:
        import huggingface_hub
        from huggingface_hub.errors import EntryNotFoundError, HFValidationError
    except ImportError:
        raise InteropError(f"{name}: fetching from the Hugging Face Hub needs huggingface_hub: "
                           "pip install 'polyseq[hf]'") from None
    repo_id, _, revision = name.partition("@")

    def download(filename: str) -> Path | None:
        try:
            return Path(huggingface_hub.hf_hub_download(repo_id, filename, revision=revision or None))
        except EntryNotFoundError:  # not in the repository (or, offline, not in the cache)
            return None
        except (OSError, HFValidationError) as error:  # no such repository, revision, network ...
            raise InteropError(f"{name} is no local directory, and fetching it from the Hugging Face "
                               f"Hub failed: {type(error).__name__}: {_first_line(error)}") from None

    config = download("config.json")
    if config is None:
        raise InteropError(f"{name} is neither a local directory nor a Hub repository with a "
                           "config.json (with HF_HUB_OFFLINE=1: in the Hub's cache)")
    weights = next((path for path in map(download, _WEIGHTS) if path is not None), None)
    if weights is None:
        raise InteropError(f"{name}: no {', '.join(_WEIGHTS)} in the Hub repository (offline, in the cache)")
    if weights.name.endswith(".index.json"):
        index = json.loads(weights.read_text(encoding="utf-8"))
        for shard in sorted(set(index.get("weight_map", {}).values())):
            if download(shard) is None:
                raise InteropError(f"{name}: the weights' shard {shard} is missing")
    for filename in _OTHERS:
        download(filename)
    return config.parent


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0]
