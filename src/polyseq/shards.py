"""Translating a corpus in shards: across the processes torchrun starts, or in one, so that a
stopped job resumes where it stopped.

The lines are cut into shards of whole chunks, the chunks that `Translator.translate_chunks`
decodes one at a time in a single process; every batch a shard decodes is then one that a single
process decodes too, so the output is the same, line for line. Shard i goes to process i mod N.
Each finished shard is written atomically into a work folder beside the output
(`.NAME.shards/`), whose manifest names the job (input, model, settings); the main process joins
the shards in order into the output, written atomically, and removes the folder. A job started
again with the same input, model and settings skips the shards already done; a work folder left by
another job is an error, never mixed in.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from polyseq.cluster import Cluster, cluster_from_environment
from polyseq.decoding import make_config
from polyseq.decoding.core import DecodeStats
from polyseq.files import InputError, atomic_file, read_text_lines, write_atomic, write_json_atomic

if TYPE_CHECKING:
    from polyseq.translator import Translator

SHARDS_PER_PROCESS = 4  # by default: finer pieces to resume from and to balance the processes
MANIFEST = "manifest.json"

# a chunk of input lines -> its output text (each line ending in "\n"), statistics, split lines
ChunkTranslator = Callable[[list[str]], tuple[str, DecodeStats, int]]


@dataclass(frozen=True)
class ShardReport:
    lines: int
    shards: int
    reused: int  # shards an earlier, stopped run had finished
    split_lines: int  # lines too long for the model among those translated now
    stats: DecodeStats = field(default_factory=DecodeStats)  # of the lines translated now


def shard_lines(lines: int, processes: int, chunk_lines: int, shards: int = 0) -> int:
    """Lines per shard: whole chunks, about `shards` shards (default: a few per process)."""
    if chunk_lines < 1 or shards < 0:
        raise ValueError(f"chunk_lines must be >= 1 and shards >= 0, got {chunk_lines}, {shards}")
    chunks = max(1, math.ceil(lines / chunk_lines))
    return math.ceil(chunks / (shards or processes * SHARDS_PER_PROCESS)) * chunk_lines


def work_folder(output: Path) -> Path:
    return output.with_name(f".{output.name}.shards")


def translate_in_shards(lines: Sequence[str], output: str | Path, translate: ChunkTranslator, *,
                        job: dict[str, Any], cluster: Cluster | None = None, shards: int = 0,
                        chunk_lines: int = 512, progress: bool = False) -> ShardReport:
    """Translate `lines` into `output` in shards (see the module's docstring); every process of
    `cluster` calls this with the same lines and job, and all return once `output` is written."""
    cluster, output = cluster or Cluster(), Path(output)
    size = shard_lines(len(lines), cluster.world_size, chunk_lines, shards)
    folder, size = _open_work_folder(output, lines, size, {**job, "chunk_lines": chunk_lines}, cluster)
    count = math.ceil(len(lines) / size)
    mine = [index for index in range(count) if index % cluster.world_size == cluster.rank]
    done = [index for index in mine if _shard_path(folder, index).is_file()]
    stats, split = DecodeStats(), 0
    bar = tqdm(total=sum(len(lines[i * size : (i + 1) * size]) for i in mine), unit="line",
               initial=sum(len(lines[i * size : (i + 1) * size]) for i in done), dynamic_ncols=True,
               desc=f"process {cluster.rank}" if cluster.distributed else "translate",
               position=cluster.rank, disable=not (progress and sys.stderr.isatty()))
    for index in sorted(set(mine) - set(done)):
        shard = lines[index * size : (index + 1) * size]
        texts = []
        for start in range(0, len(shard), chunk_lines):
            text, chunk_stats, chunk_split = translate(list(shard[start : start + chunk_lines]))
            texts.append(text)
            stats.add(chunk_stats)
            split += chunk_split
            bar.update(len(shard[start : start + chunk_lines]))
        write_atomic(_shard_path(folder, index), "".join(texts))
    bar.close()
    reports = cluster.gather((len(done), split, stats))
    if cluster.is_main:
        _join(folder, count, output)
    cluster.barrier()  # the output is written when every process returns
    total = DecodeStats()
    for _, _, part in reports:
        total.add(part)
    return ShardReport(len(lines), count, sum(r[0] for r in reports), sum(r[1] for r in reports), total)


def translate_corpus_in_shards(translator: Translator, input_path: str | Path, output_path: str | Path,
                               src_lang: str | None, tgt_lang: str, strategy: str = "beam", *,
                               shards: int = 0, cluster: Cluster | None = None, chunk_lines: int = 512,
                               progress: bool = False, **settings: Any) -> ShardReport:
    """`Translator.translate_corpus` in shards: the same output file, made by the processes of
    `cluster` (torchrun's by default) together, and resumable."""
    input_path, output_path = Path(input_path), Path(output_path)
    if output_path.resolve() == input_path.resolve():
        raise InputError(f"output {output_path} would overwrite the input; choose another path")
    make_config(strategy, settings)  # bad settings fail before any work
    job = {"model": translator.metadata, "src": src_lang, "tgt": tgt_lang, "strategy": strategy,
           "settings": settings}
    return translate_in_shards(read_text_lines(input_path), output_path,
                               chunk_translator(translator, src_lang, tgt_lang, strategy, **settings),
                               job=job, cluster=cluster or cluster_from_environment(), shards=shards,
                               chunk_lines=chunk_lines, progress=progress)


def chunk_translator(translator: Translator, src_lang: str | None, tgt_lang: str, strategy: str,
                     **settings: Any) -> ChunkTranslator:
    """Lines -> one output line each, as `Translator.translate_corpus` writes them."""
    def translate(lines: list[str]) -> tuple[str, DecodeStats, int]:
        output = next(translator.translate_chunks(lines, src_lang, tgt_lang, strategy,
                                                  chunk_lines=len(lines), **settings))
        return "".join(text + "\n" for text in output.texts), output.stats, output.split_texts

    return translate


def _shard_path(folder: Path, index: int) -> Path:
    return folder / f"shard-{index:06d}.txt"


def _open_work_folder(output: Path, lines: Sequence[str], size: int, job: dict[str, Any],
                      cluster: Cluster) -> tuple[Path, int]:
    """The job's work folder and its lines per shard: made by the main process, or found as an
    earlier run left it, whose shards stay as they were cut (with however many processes)."""
    folder = work_folder(output)
    digest = hashlib.sha256("\n".join(lines).encode("utf-8", "surrogatepass")).hexdigest()
    manifest = json.loads(json.dumps({**job, "lines": len(lines), "input_sha256": digest}))  # as read back
    found = _read_manifest(folder / MANIFEST)
    if found is not None:
        size = found.pop("shard_lines", size)
        if found != manifest:
            differ = sorted(key for key in found.keys() | manifest.keys()
                            if found.get(key) != manifest.get(key))
            raise InputError(f"{folder} holds the shards of another job ({', '.join(differ)} differ): run "
                             f"the same command to finish that one, or delete the folder to start over")
    elif cluster.is_main:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("shard-*"):  # left without a manifest, by no job it can name
            stale.unlink()
        write_json_atomic(folder / MANIFEST, {**manifest, "shard_lines": size})
    cluster.barrier()
    return folder, size


def _read_manifest(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path} is corrupt ({error}); delete {path.parent} to start over") from None


def _join(folder: Path, count: int, output: Path) -> None:
    """The shards in order into `output` (a temporary file renamed into place); then the folder goes."""
    with atomic_file(output, binary=True) as handle:  # a link written through, the file's mode kept
        for index in range(count):
            with _shard_path(folder, index).open("rb") as shard:
                shutil.copyfileobj(shard, handle)
    shutil.rmtree(folder)
