"""The CLI through Typer's runner: train, translate, eval, and errors with exit status 2."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from helpers import tiny_experiment
from polyseq.cli import app

runner = CliRunner()


def test_translate_stdin_to_stdout(tiny_model_dir: Path) -> None:
    result = runner.invoke(app, ["translate", "--model", str(tiny_model_dir), "--src", "num",
                                 "--tgt", "en", "--strategy", "greedy"], input="12\n\n300\n")
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[0] and lines[2]


def test_translate_files_with_beam_options(tiny_model_dir: Path, tmp_path: Path) -> None:
    source, target = tmp_path / "in.txt", tmp_path / "out.txt"
    source.write_text("1\n2\n3\n", encoding="utf-8")
    result = runner.invoke(app, ["translate", "-m", str(tiny_model_dir), "--tgt", "de", "-i",
                                 str(source), "-o", str(target), "--beam-size", "3",
                                 "-O", "length_penalty=0.6"])
    assert result.exit_code == 0, result.output
    assert len(target.read_text(encoding="utf-8").splitlines()) == 3


def test_translate_errors_exit_2_with_a_message(tiny_model_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["translate", "-m", str(tiny_model_dir), "--tgt", "xx"], input="1\n")
    assert result.exit_code == 2 and "xx" in result.stderr
    result = runner.invoke(app, ["translate", "-m", str(tmp_path), "--tgt", "en"], input="1\n")
    assert result.exit_code == 2 and "config.json is missing" in result.stderr
    result = runner.invoke(app, ["translate", "-m", str(tiny_model_dir), "--tgt", "en", "-s",
                                 "beem"], input="1\n")
    assert result.exit_code == 2 and "did you mean 'beam'" in result.stderr
    result = runner.invoke(app, ["translate", "-m", str(tiny_model_dir), "--tgt", "en", "--device",
                                 "cuda:64"], input="1\n")
    assert result.exit_code == 2 and "device 'cuda:64' cannot be used here" in result.stderr


def test_eval_scores_and_writes_a_report(tmp_path: Path) -> None:
    hyp, ref1, ref2 = tmp_path / "hyp", tmp_path / "ref1", tmp_path / "ref2"
    hyp.write_text("the cat sat on the mat\nhello world\n", encoding="utf-8")
    ref1.write_text("the cat sat on the mat\nhello there world\n", encoding="utf-8")
    ref2.write_text("a cat sat on a mat\nhello world\n", encoding="utf-8")
    report = tmp_path / "report.json"
    result = runner.invoke(app, ["eval", "--hyp", str(hyp), "--ref", str(ref1), "--ref", str(ref2),
                                 "--report", str(report)])
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    assert data["exact_match"] == 100.0 and data["bleu"] == 100.0
    short = tmp_path / "short"
    short.write_text("one line\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "--hyp", str(hyp), "--ref", str(short)])
    assert result.exit_code == 2 and "has 1 lines" in result.stderr


def test_train_from_a_toml_file_with_overrides(tmp_path: Path) -> None:
    config = tiny_experiment(tmp_path / "data", tmp_path / "run", steps=4, eval_every=4)
    toml = tmp_path / "run.toml"
    toml.write_text(
        f'[model]\nd_model = 32\nencoder_layers = 1\ndecoder_layers = 1\nheads = 2\nffn_dim = 64\n'
        f'max_positions = 48\n[data]\ntrain = "{config.data.train}"\nvalid = "{config.data.valid}"\n'
        f'languages = ["num", "en"]\nvocab_size = 300\nmax_tokens = 500\nmax_ratio = 12.0\nmax_length = 40\n'
        f'[train]\noutput_dir = "{tmp_path / "run"}"\nsteps = 4\neval_every = 4\nprogress = false\n',
        encoding="utf-8")
    result = runner.invoke(app, ["train", str(toml), "train.steps=3"])
    assert result.exit_code == 0, result.output
    assert "trained 3 steps" in result.stdout
    again = runner.invoke(app, ["train", str(toml), "train.steps=5", "--resume"])
    assert again.exit_code == 0, again.output
    assert "trained 5 steps" in again.stdout
    bad = runner.invoke(app, ["train", str(toml), "train.stepz=3"])
    assert bad.exit_code == 2 and "did you mean 'steps'" in bad.stderr


def test_version_and_help_print_their_text_intact() -> None:
    from polyseq import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"polyseq {__version__}"
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0 and "[model], [data], [train]" in result.stdout


def test_translate_prints_n_best_candidates_as_text_or_jsonl(tiny_model_dir: Path) -> None:
    common = ["translate", "-m", str(tiny_model_dir), "--src", "num", "--tgt", "en", "--beam-size", "4"]
    result = runner.invoke(app, [*common, "--n-best", "3"], input="12\n\n300\n")
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("\n")[:-1]
    assert len(lines) == 9 and lines[3:6] == ["", "", ""]  # an empty input has no candidates
    assert len(set(lines[:3])) == 3 and len(set(lines[6:])) == 3
    result = runner.invoke(app, [*common, "--n-best", "3", "--format", "jsonl", "--stats"],
                           input="12\n300\n")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 2
    for record, text in zip(records, lines[0::6], strict=True):
        candidates = record["candidates"]
        assert len(candidates) == 3 and candidates[0]["text"] == record["translation"] == text
        assert [c["score"] for c in candidates] == sorted((c["score"] for c in candidates), reverse=True)
        assert all(c["tokens"] > 0 for c in candidates)
    assert json.loads(result.stderr.splitlines()[-1])["forward_passes"] > 0
    plain = runner.invoke(app, [*common], input="12\n300\n")
    assert plain.stdout.splitlines() == [r["translation"] for r in records]


def test_translate_never_writes_over_its_input_and_writes_atomically(tiny_model_dir: Path,
                                                                     tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("12\n300\n", encoding="utf-8")
    common = ["translate", "-m", str(tiny_model_dir), "--src", "num", "--tgt", "en", "-s", "greedy"]
    for extra in ([], ["--n-best", "1"], ["--format", "jsonl"]):
        result = runner.invoke(app, [*common, "-i", str(source), "-o", str(source), *extra])
        assert result.exit_code == 2 and "would overwrite the input" in result.stderr
        assert source.read_text(encoding="utf-8") == "12\n300\n"
    target = tmp_path / "out.jsonl"
    result = runner.invoke(app, [*common, "-i", str(source), "-o", str(target), "--format", "jsonl"])
    assert result.exit_code == 0 and "translated 2 lines" in result.stderr
    assert [sorted(json.loads(line)) for line in target.read_text().splitlines()] == [
        ["candidates", "translation"]] * 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.txt", "out.jsonl"]  # no temporary left
    bad = runner.invoke(app, common, input=b"12\n\xff\n")
    assert bad.exit_code == 2 and "stdin, line 2, column 1: not valid UTF-8 (byte 0xff)" in bad.stderr


def test_translate_with_a_target_prefix(tiny_model_dir: Path) -> None:
    result = runner.invoke(app, ["translate", "-m", str(tiny_model_dir), "--src", "num", "--tgt", "en",
                                 "-s", "greedy", "--prefix", "seven hundred"], input="12\n\n300\n")
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("\n")[:-1]
    assert lines[1] == "" and all(line.startswith("seven hundred") for line in (lines[0], lines[2]))


def test_a_prefix_too_long_for_the_model_is_a_one_line_error(tiny_model_dir: Path) -> None:
    result = runner.invoke(app, ["translate", "-m", str(tiny_model_dir), "--src", "num", "--tgt", "en",
                                 "--prefix", "-" * 48], input="12\n")
    assert result.exit_code == 2
    assert result.stderr == ("error: prefix '---------------------------...' is 48 tokens, longer than the "
                             "model takes: its max_positions=48 less the 1 decoder start token leave 47; "
                             "shorten it\n")


def test_translate_file_takes_the_strategy_settings(tiny_model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "notes.md"
    source.write_text("# 12\n\nRun `make` now. 300\n", encoding="utf-8")
    common = ["translate-file", str(source), "-m", str(tiny_model_dir), "--src", "num", "--tgt", "en"]
    result = runner.invoke(app, [*common, "--beam-size", "3", "-O", "length_penalty=0.6"])
    assert result.exit_code == 0, result.output
    assert "`make`" in (tmp_path / "notes.en.md").read_text(encoding="utf-8")
    result = runner.invoke(app, [*common, "-s", "greedy", "-O", "beam_size=3", "-o", str(tmp_path / "x.md")])
    assert result.exit_code == 2 and "strategy 'greedy' has no setting 'beam_size'" in result.stderr
    assert not (tmp_path / "x.md").exists()


def test_translate_with_auto_source(tiny_model_dir: Path) -> None:
    result = runner.invoke(app, ["translate", "-m", str(tiny_model_dir), "--src", "auto", "--tgt", "num",
                                 "-s", "greedy"], input="two hundred and five\ndreihundertzwölf\n")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2


def test_n_best_prints_each_sample_of_sampling(tiny_model_dir: Path) -> None:
    common = ["translate", "-m", str(tiny_model_dir), "--src", "num", "--tgt", "en", "-s", "sampling",
              "-O", "seed=3", "-O", "temperature=2"]
    result = runner.invoke(app, [*common, "--n-best", "4", "--format", "jsonl"], input="12\n300\n")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [len(record["candidates"]) for record in records] == [4, 4]
    assert len({c["text"] for record in records for c in record["candidates"]}) > 2
    same = runner.invoke(app, [*common, "--n-best", "4", "-O", "num_samples=4"], input="12\n300\n")
    assert same.exit_code == 0 and len(same.stdout.splitlines()) == 8
    assert same.stdout.splitlines()[::4] == [record["translation"] for record in records]
    for strategy, n_best, options, message in [
        ("sampling", "4", ["-O", "num_samples=2"], "--n-best 4 and -O num_samples=2 disagree"),
        ("greedy", "2", [], "strategy 'greedy' gives one candidate per input"),
    ]:
        refused = runner.invoke(app, [*common[:-6], "-s", strategy, "--n-best", n_best, *options],
                                input="12\n")
        assert refused.exit_code == 2 and message in refused.stderr, refused.output
    one = runner.invoke(app, [*common[:-6], "-s", "aggressive", "--n-best", "1"], input="12\n")
    assert one.exit_code == 0 and len(one.stdout.splitlines()) == 1, one.output
