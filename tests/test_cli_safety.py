"""Bad input gets a clear error and loses nothing: no command writes over its input or over files
it did not make, -o writes through links and keeps a file's mode, and a wrong path, setting or
count is one line with exit status 2, never a traceback."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from polyseq.cli import app
from polyseq.model.checkpoint import load_model

runner = CliRunner()


def fails(args: list[str], message: str, input: str | None = None) -> None:
    """The command exits 2 with `message` in its one-line error, and no traceback."""
    result = runner.invoke(app, args, input=input)
    assert result.exit_code == 2, result.output  # an uncaught exception exits 1
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr


def translate(model: Path, *args: str) -> list[str]:
    return ["translate", "-m", str(model), "--src", "num", "--tgt", "en", "-s", "greedy", *args]


# -- model directories: export, convert, average -------------------------------------------------


def test_export_convert_and_average_never_delete_their_input_or_other_files(tiny_model_dir: Path,
                                                                            tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    files = sorted(p.name for p in model.iterdir())
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work", encoding="utf-8")
    notes = tmp_path / "notes.txt"
    notes.write_text("notes", encoding="utf-8")
    hf = tmp_path / "hf"  # a Hugging Face directory as convert reads it
    hf.mkdir()
    (hf / "config.json").write_text('{"model_type": "marian"}', encoding="utf-8")
    for args, message in [
        (["export", str(model), str(model)], "is or holds the input"),
        (["export", str(model), str(tmp_path)], "is or holds the input"),
        (["export", str(model), str(precious), "--overwrite"], "not a hf model directory"),
        (["export", str(model), str(notes)], "is not a directory"),
        (["export", str(model), str(model), "--to", "ct2"], "is or holds the input"),
        (["convert", str(hf), str(hf)], "is or holds the input"),
        (["convert", str(hf), str(precious)], "not a polyseq model directory"),
        (["average", str(model), str(model), "-o", str(precious), "--overwrite"], "not a polyseq model"),
        (["average", str(model), "-o", str(notes)], "is not a directory"),
    ]:
        fails(args, message)
    assert sorted(p.name for p in model.iterdir()) == files and load_model(model) is not None
    assert (precious / "thesis.txt").read_text(encoding="utf-8") == "years of work"
    assert notes.read_text(encoding="utf-8") == "notes" and (hf / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf", "model", "notes.txt", "precious"]


def test_a_model_directory_of_the_same_kind_is_replaced_only_with_overwrite(tiny_model_dir: Path,
                                                                            tmp_path: Path) -> None:
    mean = tmp_path / "mean"
    result = runner.invoke(app, ["average", str(tiny_model_dir), "-o", str(mean)])
    assert result.exit_code == 0, result.output
    fails(["average", str(tiny_model_dir), "-o", str(mean)], "to replace it, or choose another path")
    result = runner.invoke(app, ["average", str(tiny_model_dir), "-o", str(mean), "--overwrite"])
    assert result.exit_code == 0, result.output
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "config.json").write_text('{"model_type": "pegasus"}', encoding="utf-8")
    fails(["export", str(tiny_model_dir), str(hf)], "give --overwrite")
    fails(["export", str(tiny_model_dir), str(mean)], "not a hf model directory")  # a polyseq model
    result = runner.invoke(app, ["export", str(tiny_model_dir), str(hf), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (hf / "model.safetensors").is_file() and load_model(mean) is not None


def test_the_python_functions_guard_their_outputs_as_the_commands_do(tiny_model_dir: Path,
                                                                     tmp_path: Path) -> None:
    from polyseq.interop.ct2 import export_ct2
    from polyseq.interop.hf import export_hf, import_hf
    from polyseq.model.average import average_models
    from polyseq.model.checkpoint import CheckpointError

    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("notes", encoding="utf-8")
    hf = export_hf(tiny_model_dir, tmp_path / "hf")
    writers = [lambda out, **kw: export_hf(tiny_model_dir, out, **kw),
               lambda out, **kw: export_ct2(tiny_model_dir, out, **kw),
               lambda out, **kw: import_hf(hf, out, **kw),
               lambda out, **kw: average_models([tiny_model_dir], out, **kw)]
    for write in writers:
        with pytest.raises(CheckpointError, match="not a (hf|ct2|polyseq) model directory"):
            write(precious, overwrite=True)
        written = write(tmp_path / "out")
        with pytest.raises(CheckpointError, match=r"overwrite=True from Python"):
            write(written)
        assert write(written, overwrite=True) == written
        shutil.rmtree(written)
    with pytest.raises(CheckpointError, match="is or holds the input"):
        average_models([tiny_model_dir], tiny_model_dir, overwrite=True)
    assert (precious / "notes.txt").read_text(encoding="utf-8") == "notes"
    assert load_model(tiny_model_dir) is not None


# -- reports and outputs never replace inputs ----------------------------------------------------


def test_reports_and_outputs_never_replace_an_input(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    hyp, ref = tmp_path / "h.txt", tmp_path / "r.txt"
    hyp.write_text("hello world\n", encoding="utf-8")
    ref.write_text("hello there world\n", encoding="utf-8")
    fails(["eval", "--hyp", str(hyp), "--ref", str(ref), "--report", str(hyp)], "would overwrite the input")
    fails(["eval", "--hyp", str(hyp), "--ref", str(ref), "--report", str(ref)], "would overwrite the input")
    (tmp_path / "data.num").write_text("12\n300\n", encoding="utf-8")
    (tmp_path / "data.en").write_text("twelve\nthree hundred\n", encoding="utf-8")
    align = ["align-score", str(model), "--data", str(tmp_path / "data"), "--langs", "num,en"]
    fails([*align, "--report", str(tmp_path / "data.en")], "would overwrite the input")
    fails([*align, "--plot", str(tmp_path / "data.num")], "would overwrite the input")
    fails([*align, "--report", str(model / "config.json")], "would overwrite a file of the input")
    lexicon = tmp_path / "en-de.tsv"
    lexicon.write_text("en\tde\ndog\tHund\n", encoding="utf-8")
    text = tmp_path / "text.en"
    text.write_text("the dog\n", encoding="utf-8")
    switch = ["codeswitch", "-i", str(text)]
    fails([*switch, "--lexicon", str(lexicon), "-o", str(text)], "would overwrite the input")
    fails([*switch, "--lexicon", str(lexicon), "-o", str(lexicon)], "would overwrite the input")
    fails([*switch, "--corpus", str(tmp_path / "data"), "--src", "num", "--tgt", "en", "--save-lexicon",
           str(text)], "would overwrite the input")
    fails([*switch, "--corpus", str(tmp_path / "data"), "--src", "num", "--tgt", "en", "--save-lexicon",
           str(tmp_path / "data.en")], "would overwrite the input")
    fails([*switch, "--corpus", str(tmp_path / "data"), "--src", "num", "--tgt", "en", "--save-lexicon",
           str(tmp_path / "same"), "-o", str(tmp_path / "same")], "are the same file")
    assert hyp.read_text(encoding="utf-8") == "hello world\n" and ref.read_text().startswith("hello there")
    assert (tmp_path / "data.en").read_text(encoding="utf-8") == "twelve\nthree hundred\n"
    assert (tmp_path / "data.num").read_text(encoding="utf-8") == "12\n300\n"
    assert json.loads((model / "config.json").read_text())["architecture"] == "polyseq-seq2seq"
    assert text.read_text(encoding="utf-8") == "the dog\n" and "Hund" in lexicon.read_text()
    assert not (tmp_path / "same").exists()


# -- -o: through links, modes kept, devices and FIFOs written, clear errors ---------------------


def test_output_writes_through_a_link_and_keeps_the_mode(tiny_model_dir: Path, tmp_path: Path) -> None:
    source, real = tmp_path / "in.num", tmp_path / "real.en"
    source.write_text("12\n300\n", encoding="utf-8")
    real.write_text("old\n", encoding="utf-8")
    os.chmod(real, 0o640)
    link = tmp_path / "link.en"
    link.symlink_to(real)
    for command in (translate(tiny_model_dir, "-i", str(source), "-o", str(link)),
                    ["codeswitch", "-i", str(source), "--lexicon", str(_lexicon(tmp_path)), "-o", str(link)],
                    ["correct", "-m", str(tiny_model_dir), "--lang", "en", "-s", "greedy", "-i",
                     str(source), "-o", str(link)]):
        real.write_text("old\n", encoding="utf-8")
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
        assert link.is_symlink() and link.resolve() == real
        assert stat.S_IMODE(real.stat().st_mode) == 0o640
        assert len(real.read_text(encoding="utf-8").splitlines()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.num", "lex.tsv", "link.en", "real.en"]


def _lexicon(tmp_path: Path) -> Path:
    path = tmp_path / "lex.tsv"
    path.write_text("en\tde\ndog\tHund\n", encoding="utf-8")
    return path


def test_output_to_a_fifo_is_written_into_it(tiny_model_dir: Path, tmp_path: Path) -> None:
    source, fifo = tmp_path / "in.num", tmp_path / "pipe"
    source.write_text("12\n300\n", encoding="utf-8")
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text(encoding="utf-8")), daemon=True)
    reader.start()
    result = runner.invoke(app, translate(tiny_model_dir, "-i", str(source), "-o", str(fifo)))
    reader.join(timeout=60)
    assert result.exit_code == 0, result.output
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # not replaced by a regular file
    assert len(received) == 1 and len(received[0].splitlines()) == 2


def test_output_paths_that_cannot_be_written_are_named_before_any_work(tiny_model_dir: Path,
                                                                       tmp_path: Path) -> None:
    source = tmp_path / "in.num"
    source.write_text("12\n", encoding="utf-8")
    missing = tmp_path / "nodir" / "out.en"
    fails(translate(tiny_model_dir, "-i", str(source), "-o", str(missing)), f"{missing}: the folder")
    fails(translate(tiny_model_dir, "-i", str(source), "-o", str(missing), "--shards", "2"),
          f"{missing}: the folder")
    fails(translate(tiny_model_dir, "-i", str(source), "-o", str(tmp_path)), "is a folder")
    fails(["correct", "-m", str(tiny_model_dir), "--lang", "en", "-i", str(source), "-o", str(missing)],
          f"{missing}: the folder")
    fails(["codeswitch", "-i", str(source), "--lexicon", str(_lexicon(tmp_path)), "-o", str(tmp_path)],
          "is a folder")
    assert not (tmp_path / "nodir").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.num", "lex.tsv"]


# -- system errors are one line ------------------------------------------------------------------


def test_folders_where_files_go_are_one_line_errors(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    doc = tmp_path / "doc.md"
    doc.write_text("# twelve\n", encoding="utf-8")
    fails(["translate-file", str(doc), "-m", str(tiny_model_dir), "--src", "en", "--tgt", "de", "-o",
           str(folder)], "is a folder")
    hyp = tmp_path / "h.txt"
    hyp.write_text("a b\n", encoding="utf-8")
    fails(["eval", "--hyp", str(hyp), "--ref", str(hyp), "--report", str(folder)], "is a folder")
    (tmp_path / "data.num").write_text("12\n", encoding="utf-8")
    (tmp_path / "data.en").write_text("twelve\n", encoding="utf-8")
    fails(["align-score", str(tiny_model_dir), "--data", str(tmp_path / "data"), "--langs", "num,en",
           "--report", str(folder)], "is a folder")
    fails(["codeswitch", "-i", str(hyp), "--corpus", str(tmp_path / "data"), "--src", "num", "--tgt", "en",
           "--save-lexicon", str(folder)], "is a folder")
    fails(["quickstart", "--output", str(hyp)], "is a file")
    fails(["train", str(folder)], "is a folder")
    assert not any(folder.iterdir()) and hyp.read_text(encoding="utf-8") == "a b\n"


def test_an_os_error_names_the_path_without_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a b\n", encoding="utf-8")
    fails(["eval", "--hyp", str(blocker), "--ref", str(blocker), "--report", str(blocker / "report.json")],
          f"error: {blocker}: ")


# -- strategy settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(("strategy", "option", "message"), [
    ("beam", "beam_size=abc", "setting beam_size: 'abc' is not a valid int"),
    ("beam", "beam_size=null", "setting beam_size: None is not a valid int"),
    ("beam", "beam_size=2.5", "setting beam_size: 2.5 is not a valid int"),
    ("beam", "min_length=abc", "setting min_length"),
    ("beam", "length_penalty=abc", "setting length_penalty: 'abc' is not a valid float"),
    ("beam", "max_len_b=abc", "setting max_len_b"),
    ("beam", "processing=foo", "setting processing is given by its parts"),
    ("sampling", "seed=abc", "setting seed"),
    ("greedy", "max_length=5", "setting max_length is given by its parts: max_len_a, max_len_b"),
    ("greedy", "max_len_b=-100", "max_len_b an integer >= 1"),
    ("greedy", "max_len_a=-1", "max_len_a must be a number >= 0"),
])
def test_strategy_settings_are_typed_and_named(tiny_model_dir: Path, strategy: str, option: str,
                                               message: str) -> None:
    command = ["translate", "-m", str(tiny_model_dir), "--src", "num", "--tgt", "en", "-s", strategy]
    fails([*command, "-O", option], message, input="12\n")


def test_unknown_settings_are_offered_by_their_flat_names(tiny_model_dir: Path) -> None:
    result = runner.invoke(app, translate(tiny_model_dir, "-O", "colour=1"), input="12\n")
    assert result.exit_code == 2 and "max_len_b" in result.stderr
    assert "max_length" not in result.stderr and "processing" not in result.stderr


def test_settings_are_typed_for_translate_file_and_correct(tiny_model_dir: Path, tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("# twelve\n", encoding="utf-8")
    fails(["translate-file", str(doc), "-m", str(tiny_model_dir), "--src", "en", "--tgt", "de", "-O",
           "beam_size=abc"], "setting beam_size")
    fails(["correct", "-m", str(tiny_model_dir), "--lang", "en", "-O", "max_len_b=x"], "setting max_len_b",
          input="twelve\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.md"]


def test_beam_size_given_twice_must_agree(tiny_model_dir: Path) -> None:
    fails(["translate", "-m", str(tiny_model_dir), "--src", "num", "--tgt", "en", "--beam-size", "4",
           "-O", "beam_size=3"], "--beam-size 4 and -O beam_size=3 disagree", input="12\n")


def test_distill_takes_the_beam_size_of_an_option(tiny_model_dir: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    module = importlib.import_module("polyseq.train.distill")  # polyseq.train.distill is its function
    seen: list[dict[str, Any]] = []

    class Result:
        steps, best_bleu, best_dir = 1, 0.0, "x"

    def fake(teacher: Path, experiment: Any, *, strategy: str, settings: dict[str, Any], **_: Any) -> Any:
        seen.append(settings)
        return Result()

    monkeypatch.setattr(module, "distill", fake)
    config = tmp_path / "student.toml"
    config.write_text("", encoding="utf-8")
    for extra, size in ([], 5), (["-O", "beam_size=2"], 2), (["--beam-size", "3"], 3):
        result = runner.invoke(app, ["distill", "-t", str(tiny_model_dir), str(config), *extra])
        assert result.exit_code == 0, result.output
        assert seen[-1]["beam_size"] == size


# -- sharded jobs, counts, metrics ---------------------------------------------------------------


def test_a_sharded_job_that_fails_its_checks_leaves_nothing_behind(tiny_model_dir: Path,
                                                                   tmp_path: Path) -> None:
    source, output = tmp_path / "in.num", tmp_path / "x.en"
    source.write_text("12\n300\n7\n", encoding="utf-8")
    sharded = ["translate", "-m", str(tiny_model_dir), "-i", str(source), "-o", str(output), "--shards", "2",
               "--src", "num"]
    fails([*sharded, "--tgt", "en", "-O", "beam_size=0"], "beam_size must be >= 1")
    fails([*sharded, "--tgt", "qq", "-O", "beam_size=2"], "qq")
    fails([*sharded, "--tgt", "en", "-O", "max_len_b=x"], "setting max_len_b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.num"]
    fails(translate(tiny_model_dir, "-i", str(source), "-o", str(output), "--shards", "-3"),
          "--shards must be >= 0")
    result = runner.invoke(app, [*sharded, "--tgt", "en", "-O", "beam_size=2"])
    assert result.exit_code == 0, result.output
    assert len(output.read_text(encoding="utf-8").splitlines()) == 3


def test_align_score_refuses_a_negative_sentence_count(tiny_model_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "data.num").write_text("12\n300\n", encoding="utf-8")
    (tmp_path / "data.en").write_text("twelve\nthree hundred\n", encoding="utf-8")
    fails(["align-score", str(tiny_model_dir), "--data", str(tmp_path / "data"), "--langs", "num,en",
           "--sentences", "-5"], "--sentences must be >= 0")


def test_eval_of_an_empty_file_and_of_files_of_other_lengths_names_them(tmp_path: Path) -> None:
    empty, one, two = tmp_path / "empty", tmp_path / "one", tmp_path / "two"
    empty.write_text("", encoding="utf-8")
    one.write_text("He go .\n", encoding="utf-8")
    two.write_text("He go .\nShe go .\n", encoding="utf-8")
    m2 = tmp_path / "gold.m2"
    m2.write_text("S He go .\nA 1 2|||R:VERB|||goes|||REQUIRED|||-NONE-|||0\n\n", encoding="utf-8")
    for metric in (["--metric", "bleu", "--ref", str(empty)], ["--metric", "gleu", "--src", str(empty),
                   "--ref", str(empty)], ["--metric", "m2", "--m2", str(m2)]):
        fails(["eval", "--hyp", str(empty), *metric], f"{empty} is empty")
    fails(["eval", "--hyp", str(two), "--metric", "gleu", "--src", str(one), "--ref", str(two)],
          f"{one} has 1 lines but {two} has 2")
    fails(["eval", "--hyp", str(two), "--metric", "m2", "--m2", str(m2)], f"{m2} has 1 sentences but {two}")
    fails(["eval", "--hyp", str(two), "--metric", "m2", "--src", str(two), "--ref", str(one)],
          f"{one} has 1 lines but {two} has 2")


def test_correct_takes_a_format_and_says_what_it_wrote(tiny_model_dir: Path, tmp_path: Path) -> None:
    doc = tmp_path / "notes.xyz"
    doc.write_text("twelve\n", encoding="utf-8")
    correct = ["correct", "-m", str(tiny_model_dir), "--lang", "en", "-s", "greedy"]
    fails([*correct, str(doc)], "--format")
    result = runner.invoke(app, [*correct, str(doc), "--format", "plain"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "notes.corrected.xyz").is_file()
    result = runner.invoke(app, [*correct, "-i", str(doc), "-o", str(tmp_path / "out.txt")])
    assert result.exit_code == 0 and f"corrected 1 lines into {tmp_path / 'out.txt'}" in result.stderr


def test_configs_of_the_wrong_types_are_one_line_errors(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text("model = 3\n", encoding="utf-8")
    fails(["train", str(config)], "model must be a [model] table")
    fails(["train", str(config.with_name("other.toml")), "train.betas=0.9"], "does not exist")
    config.write_text(f'[train]\noutput_dir = "{tmp_path / "run"}"\n', encoding="utf-8")
    fails(["train", str(config), "train.betas=0.9"], "train.betas must be two numbers")
    config.write_text("[serve]\nport = [1]\n", encoding="utf-8")
    fails(["serve", str(tiny_model_dir), "--config", str(config)], "serve.port: [1] is not a valid int")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.toml"]  # nothing trained into run/
