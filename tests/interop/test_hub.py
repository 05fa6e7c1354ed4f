"""`polyseq convert org/name`: a Hub repository id is fetched with huggingface_hub into its cache
and imported from there. No test reaches the network: the repository is put in a cache of the
test's own, laid out as huggingface_hub lays it out, and a real `polyseq` process reads it with
HF_HUB_OFFLINE=1, through the same calls that fetch it online."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tokenizer_files import TEXTS, marian_model

from polyseq.translator import Translator
from spawn import environment

REPO, COMMIT = "test-org/opus-mt-tiny", "0123456789abcdef0123456789abcdef01234567"


def hub_cache(cache: Path, files: Path, commit: str = COMMIT, ref: str = "main") -> Path:
    """`files` as the snapshot `commit` of REPO in a huggingface_hub cache, `ref` pointing at it."""
    folder = cache / f"models--{REPO.replace('/', '--')}"
    shutil.copytree(files, folder / "snapshots" / commit)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / ref).write_text(commit, encoding="utf-8")
    return cache


def convert(cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**environment(), "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "polyseq", "convert", *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_hub_repository_id_is_fetched_through_the_cache_and_imported(tmp_path: Path) -> None:
    marian_model(tmp_path / "opus")
    cache = hub_cache(tmp_path / "hub", tmp_path / "opus")
    hub_cache(cache, tmp_path / "opus", commit="f" * 40, ref="v1")  # a tag, pinned with @v1
    done = convert(cache, REPO, str(tmp_path / "from-hub"))
    assert done.returncode == 0, done.stderr
    local = convert(cache, str(tmp_path / "opus"), str(tmp_path / "from-dir"))
    assert local.returncode == 0, local.stderr
    ours, reference = (Translator.load(tmp_path / name) for name in ("from-hub", "from-dir"))
    assert ours.translate(TEXTS, "en", "de", "greedy") == reference.translate(TEXTS, "en", "de", "greedy")
    origin = json.loads((tmp_path / "from-hub" / "metadata.json").read_text())["imported_from"]
    assert (origin["hub"], origin["commit"]) == (REPO, COMMIT)
    pinned = convert(cache, f"{REPO}@v1", str(tmp_path / "pinned"))
    assert pinned.returncode == 0, pinned.stderr
    pinned_origin = json.loads((tmp_path / "pinned" / "metadata.json").read_text())["imported_from"]
    assert pinned_origin["commit"] == "f" * 40


def test_a_repository_that_cannot_be_fetched_is_one_line_error(tmp_path: Path) -> None:
    marian_model(tmp_path / "opus")
    (tmp_path / "opus" / "model.safetensors").unlink()  # a repository without weights
    cache = hub_cache(tmp_path / "hub", tmp_path / "opus")
    for repo, message in (("test-org/absent", "neither a local directory nor a Hub repository"),
                          (REPO, "no model.safetensors")):
        done = convert(cache, repo, str(tmp_path / "out"))
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "out").exists()
