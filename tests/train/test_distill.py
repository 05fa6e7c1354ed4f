"""`polyseq distill` under torchrun: two processes share the teacher's translations of the
training sources (the same, line for line, as one process's) and train the student on them."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest

from helpers import tiny_experiment
from polyseq.data.corpus import load_corpus
from polyseq.files import read_text_lines
from polyseq.train.distill import CHUNK_LINES, distill
from polyseq.train.loop import TrainingError
from polyseq.translator import Translator
from spawn import finish, polyseq, write_toml


def test_two_processes_distill_a_teacher_into_a_student(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = tiny_experiment(tmp_path / "data", tmp_path / "student", steps=4, eval_every=4)
    config = replace(config, model=replace(config.model, d_model=16, ffn_dim=32),
                     train=replace(config.train, threads=1))
    code, out, err = finish(polyseq("distill", "-t", str(tiny_model_dir), "--beam-size", "2",
                                    str(write_toml(config, tmp_path / "student.toml")), processes=2))
    assert code == 0, err[-3000:]
    assert "student trained 4 steps" in out
    folder = tmp_path / "student" / "distilled"
    pairs = load_corpus(config.data.train, config.data.languages, config.data.all_directions())
    sources: dict[tuple[str, str], list[str]] = defaultdict(list)
    for pair in pairs:
        sources[(pair.src_lang, pair.tgt_lang)].append(pair.src)
    teacher = Translator.load(tiny_model_dir)
    for (src, tgt), texts in sources.items():  # what one process translates
        assert len(texts) > CHUNK_LINES  # two shards: one for each process
        alone = list(teacher.translate_lines(texts, src, tgt, "beam", chunk_lines=CHUNK_LINES, beam_size=2))
        assert read_text_lines(folder / f"teacher.{src}-{tgt}.txt") == alone, (src, tgt)
    records = [json.loads(line) for line in (folder / "train.jsonl").open()]
    assert [(r["src"], r["src_lang"], r["tgt_lang"]) for r in records] == [
        (p.src, p.src_lang, p.tgt_lang) for p in pairs]
    student = tmp_path / "student" / "best"
    assert (student / "tokenizer.model").read_bytes() == (tiny_model_dir / "tokenizer.model").read_bytes()
    assert json.loads((student / "metadata.json").read_text())["train"] == str(folder / "train.jsonl")
    # resumed in one process: the corpus is reused, not translated again
    notes: list[str] = []
    longer = replace(config, train=replace(config.train, steps=6))
    result = distill(tiny_model_dir, longer, settings={"beam_size": 2}, resume=True, log=notes.append)
    assert result.steps == 6 and any("made earlier" in note for note in notes)
    with pytest.raises(TrainingError, match="needs data.train"):
        distill(tiny_model_dir, replace(config, data=replace(config.data, valid="")))


def test_a_job_stopped_before_the_student_trained_resumes(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = tiny_experiment(tmp_path / "data", tmp_path / "student", steps=2, eval_every=2,
                             directions=("num-en",))
    notes: list[str] = []
    result = distill(tiny_model_dir, config, strategy="greedy", resume=True, log=notes.append)
    assert result.steps == 2 and any("no checkpoint yet" in note for note in notes)


def test_translations_of_another_teacher_or_decoding_are_refused(tiny_model_dir: Path,
                                                                 tmp_path: Path) -> None:
    """distilled/ made by one job is never reused, or mixed into, by a job with other settings."""
    config = tiny_experiment(tmp_path / "data", tmp_path / "student", steps=2, eval_every=2,
                             directions=("num-en",))
    distill(tiny_model_dir, config, strategy="greedy", log=lambda message: None)
    corpus = (tmp_path / "student" / "distilled" / "train.jsonl").read_bytes()
    longer = replace(config, train=replace(config.train, steps=4))
    with pytest.raises(TrainingError, match=r"another teacher or decoding \(settings, strategy differ\)"):
        distill(tiny_model_dir, longer, settings={"beam_size": 2}, resume=True, log=lambda message: None)
    assert (tmp_path / "student" / "distilled" / "train.jsonl").read_bytes() == corpus
    result = distill(tiny_model_dir, longer, strategy="greedy", resume=True, log=lambda message: None)
    assert result.steps == 4
