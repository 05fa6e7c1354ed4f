"""Sequence-level knowledge distillation (Kim & Rush, 2016): a teacher translates the training
sources (beam search by default), and a student, usually smaller, trains on those translations in
place of the references; it is still validated, and its best checkpoint chosen, on the real
references of data.valid.

The translations go into `output_dir/distilled/` (one file per direction, then `train.jsonl`,
the student's corpus), made in shards (polyseq.shards), so that under torchrun the processes share
the work and a stopped job resumes (`job.json` there names the teacher, decoding and sources
they are of: a job with others is refused, never mixed in); then the student trains as
`polyseq train` would, with DDP under torchrun. The student uses the teacher's tokenizer when
the teacher has polyseq's own (the same token ids also let it serve as the teacher's draft model
in speculative decoding), unless it starts from a model of its own (`train.init_from`), whose
tokenizer its weights need.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from polyseq.cluster import Cluster, cluster_from_environment, connected, process_device
from polyseq.config import ExperimentConfig, replace
from polyseq.data.corpus import load_corpus
from polyseq.decoding import make_config
from polyseq.devices import usable_device
from polyseq.files import read_text_lines, write_atomic, write_json_atomic
from polyseq.shards import chunk_translator, translate_in_shards
from polyseq.text.tokenizer import MODEL_FILE
from polyseq.train.distributed import before_the_group
from polyseq.train.loop import TrainingError, TrainResult, train
from polyseq.translator import Translator

CHUNK_LINES = 256  # sources the teacher decodes at a time: a few full batches, and finer shards
JOB_FILE = "job.json"  # in distilled/: the teacher, decoding and sources its translations are of


def distill(teacher: str | Path, config: ExperimentConfig, *, strategy: str = "beam",
            settings: dict[str, Any] | None = None, resume: bool = False, log: Any = print,
            cluster: Cluster | None = None) -> TrainResult:
    """Translate config.data.train's sources with `teacher`, then train the student `config`
    describes on them (see the module's docstring)."""
    teacher, cluster = Path(teacher), cluster or cluster_from_environment()
    settings = {"beam_size": 5} if settings is None and strategy == "beam" else settings or {}
    output_dir = Path(config.train.output_dir)
    if not config.data.train or not config.data.valid:
        raise TrainingError("distill needs data.train (the sources the teacher translates) and "
                            "data.valid (real references, on which the student is chosen)")
    if not resume and (output_dir / "last").exists():
        raise TrainingError(f"{output_dir} already holds a run; pass --resume to continue it, or "
                            "choose another train.output_dir")
    make_config(strategy, settings)  # a misspelt setting fails before any work
    if config.train.threads:  # the teacher's translation too, not the student's training alone
        torch.set_num_threads(config.train.threads)
    device = usable_device(process_device(config.train.device, cluster))
    if cluster.distributed:  # the student's training needs it before the group (see there)
        before_the_group()
    with connected(cluster, device) as cluster:
        quiet = log if cluster.is_main else _quiet
        corpus = distilled_corpus(teacher, config, strategy, settings, cluster, device, quiet)
        if cluster.is_main:
            _share_tokenizer(teacher, output_dir, config, quiet)
        student = replace(config, data=replace(config.data, train=str(corpus)))
        if resume and not any((output_dir / name).is_dir() for name in ("last", ".last.old")):
            quiet("the student has no checkpoint yet (the job stopped while the teacher translated): "
                  "its training starts now")
            resume = False
        return train(student, resume=resume, log=log, cluster=cluster)


def distilled_corpus(teacher: Path, config: ExperimentConfig, strategy: str, settings: dict[str, Any],
                     cluster: Cluster, device: Any, log: Any) -> Path:
    """`output_dir/distilled/train.jsonl`: each training pair's source with the teacher's
    translation (made, or found made by an earlier run)."""
    folder = Path(config.train.output_dir) / "distilled"
    corpus = folder / "train.jsonl"
    data = config.data
    _claim(folder, {"teacher": str(teacher.resolve()), "strategy": strategy, "settings": settings,
                    "sources": data.train, "directions": [f"{a}-{b}" for a, b in data.all_directions()]},
           cluster)
    if corpus.is_file():
        log(f"student corpus: {corpus} (made earlier)")
        return corpus
    pairs = load_corpus(data.train, data.languages, data.all_directions())
    by_direction: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, pair in enumerate(pairs):
        by_direction[(pair.src_lang, pair.tgt_lang)].append(index)
    translator = Translator.load(teacher, device=device)
    translations = [""] * len(pairs)
    for (src, tgt), indices in sorted(by_direction.items()):
        output = folder / f"teacher.{src}-{tgt}.txt"
        if not output.is_file():
            log(f"the teacher translates {len(indices):,} {src}-{tgt} sources into {output}")
            folder.mkdir(parents=True, exist_ok=True)
            job = {"teacher": str(teacher.resolve()), "src": src, "tgt": tgt, "strategy": strategy,
                   "settings": settings}
            translate_in_shards([pairs[i].src for i in indices], output,
                                chunk_translator(translator, src, tgt, strategy, **settings),
                                job=job, cluster=cluster, chunk_lines=CHUNK_LINES,
                                progress=config.train.progress)
        for index, text in zip(indices, read_text_lines(output), strict=True):
            translations[index] = text
    if cluster.is_main:
        write_atomic(corpus, "".join(json.dumps({"src": pair.src, "tgt": text, "src_lang": pair.src_lang,
                                                 "tgt_lang": pair.tgt_lang}, ensure_ascii=False) + "\n"
                                     for pair, text in zip(pairs, translations, strict=True)))
    cluster.barrier()
    log(f"student corpus: {corpus}, {len(pairs):,} pairs")
    return corpus


def _claim(folder: Path, job: dict[str, Any], cluster: Cluster) -> None:
    """Take `folder` for `job`: its translations, made earlier, are reused only for the same job
    (a folder without a job file, from an older polyseq, is taken as it is)."""
    path, job = folder / JOB_FILE, json.loads(json.dumps(job))  # as read back
    if path.is_file():
        found = json.loads(path.read_text(encoding="utf-8"))
        differ = sorted(key for key in found.keys() | job.keys() if found.get(key) != job.get(key))
        if differ:
            raise TrainingError(f"{folder} holds the translations of another teacher or decoding "
                                f"({', '.join(differ)} differ): distill as that job did to go on with it, "
                                f"or delete {folder} to start over")
    elif cluster.is_main:
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, job)
    cluster.barrier()


def _share_tokenizer(teacher: Path, output_dir: Path, config: ExperimentConfig, log: Any) -> None:
    """Give the student the teacher's tokenizer (polyseq's own, covering the student's
    languages) unless its run has one already or it starts from a model whose tokenizer
    `train.init_from` gives it."""
    from polyseq.model.checkpoint import load_metadata
    from polyseq.text.tokenizer import Tokenizer

    target = output_dir / "tokenizer" / MODEL_FILE
    kind = (load_metadata(teacher).get("tokenizer") or {}).get("kind", "polyseq")
    if target.is_file() or kind != "polyseq" or config.train.init_from:
        return
    missing = set(config.data.languages) - set(Tokenizer.load(teacher).languages)
    if missing:
        raise TrainingError(f"the teacher {teacher} does not know {', '.join(sorted(missing))}, "
                            "which data.languages names")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(teacher / MODEL_FILE, target)
    log(f"the student shares the teacher's tokenizer ({target}); data.vocab_size is not used")


def _quiet(message: str) -> None:
    """The log of processes other than the main one."""
