"""Corpus translation in shards: the output equals one process's, line for line; a stopped job
resumes from its finished shards; another job's shards are never mixed in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from polyseq.cli import app
from polyseq.files import InputError
from polyseq.shards import shard_lines, translate_in_shards, work_folder
from polyseq.translator import Translator

runner = CliRunner()


def numbers(count: int) -> list[str]:
    return ["" if i % 17 == 0 else str(i * 7919 % 1000) for i in range(count)]


def test_shards_are_whole_chunks_a_few_per_process() -> None:
    assert shard_lines(1300, processes=2, chunk_lines=64) == 192  # 21 chunks, about 8 shards
    assert shard_lines(1300, processes=1, chunk_lines=64, shards=3) == 448
    assert shard_lines(0, processes=4, chunk_lines=512) == 512
    with pytest.raises(ValueError, match="chunk_lines"):
        shard_lines(10, processes=1, chunk_lines=0)


def test_a_stopped_job_resumes_from_its_shards_and_equals_one_pass(tiny_model_dir: Path,
                                                                   tmp_path: Path) -> None:
    translator = Translator.load(tiny_model_dir)
    lines = numbers(300)
    source, single = tmp_path / "in.num", tmp_path / "single.en"
    source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    translator.translate_corpus(source, single, "num", "en", strategy="greedy", chunk_lines=32)
    calls: list[int] = []

    def translate(chunk: list[str]) -> tuple[str, object, int]:
        calls.append(len(chunk))
        if stop_after is not None and len(calls) > stop_after:
            raise KeyboardInterrupt  # a stop in the middle of the third shard
        output = next(translator.translate_chunks(chunk, "num", "en", "greedy", chunk_lines=len(chunk)))
        return "".join(text + "\n" for text in output.texts), output.stats, output.split_texts

    output, job = tmp_path / "sharded.en", {"model": "tiny", "strategy": "greedy"}
    stop_after: int | None = 5  # two shards of two chunks each, and one chunk of the third
    with pytest.raises(KeyboardInterrupt):
        translate_in_shards(lines, output, translate, job=job, shards=5, chunk_lines=32)
    assert sorted(p.name for p in work_folder(output).glob("shard-*")) == ["shard-000000.txt",
                                                                            "shard-000001.txt"]
    assert not output.exists()
    stop_after, calls = None, []  # resumed with other settings: the shards stay as they were cut
    report = translate_in_shards(lines, output, translate, job=job, shards=2, chunk_lines=32)
    assert (report.lines, report.shards, report.reused) == (300, 5, 2)
    assert len(calls) == 6  # the three shards left, of 64 + 64 + 44 lines
    assert output.read_bytes() == single.read_bytes()
    assert not work_folder(output).exists()


def test_the_shards_of_another_job_are_refused(tmp_path: Path) -> None:
    def translate(chunk: list[str]) -> tuple[str, object, int]:
        raise KeyboardInterrupt

    output = tmp_path / "out.txt"
    with pytest.raises(KeyboardInterrupt):
        translate_in_shards(["a", "b"], output, translate, job={"model": "one"})
    with pytest.raises(InputError, match=r"holds the shards of another job \(input_sha256, model differ\)"):
        translate_in_shards(["a", "c"], output, translate, job={"model": "two"})
    manifest = json.loads((work_folder(output) / "manifest.json").read_text())
    assert manifest["model"] == "one" and manifest["lines"] == 2


def test_the_command_line_translates_in_shards_as_in_one_pass(tiny_model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.num"
    source.write_text("".join(line + "\n" for line in numbers(90)), encoding="utf-8")
    common = ["translate", "-m", str(tiny_model_dir), "--src", "num", "--tgt", "de", "-i", str(source),
              "-s", "beam", "--beam-size", "3"]
    plain = runner.invoke(app, [*common, "-o", str(tmp_path / "plain.de")])
    sharded = runner.invoke(app, [*common, "-o", str(tmp_path / "sharded.de"), "--shards", "3"])
    assert plain.exit_code == 0 and sharded.exit_code == 0, sharded.output
    assert "translated 90 lines in 1 shards" in sharded.stderr  # 90 lines make one chunk
    assert (tmp_path / "plain.de").read_bytes() == (tmp_path / "sharded.de").read_bytes()
    missing = runner.invoke(app, [*common[:-6], "--shards", "2"], input="1\n")
    assert missing.exit_code == 2 and "needs --input and --output" in missing.stderr
