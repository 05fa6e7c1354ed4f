"""A Sequence-to-Action model (model.actions = "s2a") trained end to end: it overfits one batch,
learns a copy-and-delete task through the training loop, reloads as it was saved, decodes plain
text with every strategy, and aggressive decoding returns greedy's tokens at batch 1 and 3."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from helpers import TINY_MODEL, overfit_losses, tiny_experiment, write_copy_corpus
from polyseq.config import Actions, DataConfig, ExperimentConfig, TrainConfig
from polyseq.data.batching import collate
from polyseq.data.corpus import Example
from polyseq.decoding import generate
from polyseq.model.actions import ActionSeq2Seq, action_target, build_model
from polyseq.model.checkpoint import load_model
from polyseq.model.transformer import Seq2Seq
from polyseq.train.loop import train
from polyseq.translator import Translator

S2A_MODEL = replace(TINY_MODEL, max_positions=64, actions=Actions.S2A)
TEXTS = ["one hundred and five", "two thousand, three hundred and forty-one", "seven hundred and eighty"]


@pytest.fixture(scope="module")
def s2a_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A run on 'xx' number words -> 'yy' the same without 'and' and commas (skips and copies)."""
    root = tmp_path_factory.mktemp("s2a")
    spec = write_copy_corpus(root / "data", range(100, 2000, 3))
    config = ExperimentConfig(
        model=S2A_MODEL,
        data=DataConfig(train=spec, languages=("xx", "yy"), directions=("xx-yy",), vocab_size=300,
                        max_tokens=1500, max_length=60, valid_size=30),
        train=TrainConfig(output_dir=str(root / "run"), steps=200, lr=5e-3, warmup_steps=20,
                          eval_every=200, eval_bleu_sentences=10, progress=False),
    )
    messages: list[str] = []
    train(config, log=messages.append)
    return root / "run", messages


def test_the_run_trains_on_action_sequences_and_saves_an_s2a_model(s2a_run: tuple[Path, list[str]]) -> None:
    run, messages = s2a_run
    summary = next(m for m in messages if m.startswith("action targets:"))
    assert "skip" in summary and "copy" in summary
    saved = json.loads((run / "best" / "config.json").read_text())["model"]
    assert saved["actions"] == "s2a" and saved["skip_id"] == 2
    assert isinstance(load_model(run / "best"), ActionSeq2Seq)
    metadata = json.loads((run / "best" / "metadata.json").read_text())
    assert metadata["actions"]["skip"] > 0 and metadata["actions"]["copy"] > metadata["actions"]["skip"]


def test_it_corrects_with_skips_and_users_see_plain_text(s2a_run: tuple[Path, list[str]]) -> None:
    translator = Translator.load(s2a_run[0] / "best")
    output = translator.translate_detailed(TEXTS, "xx", "yy", "greedy")
    assert output.texts == [t.replace(" and", "").replace(",", "") for t in TEXTS]
    skip = translator.model.config.skip_id
    assert all(skip in h.tokens for h in output.hypotheses[0])  # the words left out were skipped
    for strategy, settings in [("beam", {"beam_size": 4, "n_best": 2}), ("sampling", {"seed": 1})]:
        texts = translator.translate(TEXTS, "xx", "yy", strategy, **settings)
        assert len(texts) == 3 and not any("<s>" in text for text in texts)


def test_aggressive_equals_greedy_at_batch_1_and_3_in_fewer_passes(s2a_run: tuple[Path, list[str]]) -> None:
    translator = Translator.load(s2a_run[0] / "best")
    texts = [*TEXTS, "nine", "one thousand and one", "four hundred and twelve thousand, and six"]
    for batch in (1, 3):
        passes = {}
        for strategy in ("greedy", "aggressive", "speculative"):
            hypotheses, passes[strategy] = [], 0
            for start in range(0, len(texts), batch):
                output = translator.translate_detailed(texts[start : start + batch], "xx", "yy", strategy)
                hypotheses += [group[0] for group in output.hypotheses]
                passes[strategy] += output.stats.forward_passes
            if strategy == "greedy":
                expected = hypotheses
            assert [h.tokens for h in hypotheses] == [h.tokens for h in expected], (strategy, batch)
            for ours, theirs in zip(hypotheses, expected, strict=True):
                assert ours.log_prob == pytest.approx(theirs.log_prob, abs=1e-3)
        assert passes["aggressive"] < passes["greedy"] / 2, passes


def test_log_probs_score_the_action_sequence(s2a_run: tuple[Path, list[str]]) -> None:
    translator = Translator.load(s2a_run[0] / "best")
    hypothesis = translator.translate_detailed(TEXTS[:1], "xx", "yy", "greedy").hypotheses[0][0]
    tokenizer, framing = translator.tokenizer, translator.tokenizer.framing("xx", "yy")
    sequence = action_target(framing.source(tokenizer.encode(TEXTS[0])),
                             framing.target(tokenizer.encode(tokenizer.decode(list(hypothesis.tokens)))),
                             translator.model.config.skip_id)
    assert tuple(sequence[1:-1]) == hypothesis.tokens  # the alignment finds the model's own skips
    score = translator.log_probs(TEXTS[:1], [tokenizer.decode(list(hypothesis.tokens))], "yy", "xx")[0]
    assert score == pytest.approx(hypothesis.log_prob, abs=1e-3)


def test_a_saved_model_reloads_identical(s2a_run: tuple[Path, list[str]], tmp_path: Path) -> None:
    from polyseq.model.checkpoint import save_model_files, write_directory_atomic

    model = load_model(s2a_run[0] / "best")
    again = load_model(write_directory_atomic(tmp_path / "again", lambda d: save_model_files(d, model, {})))
    src = torch.tensor([[4, 10, 11, 12, 3]])
    prefix = torch.tensor([[4]])
    from polyseq.decoding.core import DecodeInput

    inputs = DecodeInput(src, prefix, eos_id=3, pad_id=0)
    assert generate(model, inputs, "greedy").best() == generate(again, inputs, "greedy").best()
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_an_s2a_model_overfits_one_batch() -> None:
    skip = S2A_MODEL.skip_id
    pairs = [([4, 10, 11, 12, 13, 3], [4, 10, 12, 13, 3]), ([4, 14, 15, 16, 3], [4, 14, 20, 16, 3]),
             ([4, 17, 18, 3], [4, 17, 21, 18, 3]), ([4, 19, 3], [4, 19, 3])]
    examples = [Example(src, action_target(src, tgt, skip)) for src, tgt in pairs]
    batch = collate(examples, pad_id=0)
    torch.manual_seed(0)
    model = build_model(replace(S2A_MODEL, vocab_size=32))
    losses = overfit_losses(model, batch)
    assert losses[-1] < 0.05 < losses[0]
    from polyseq.decoding.core import DecodeInput

    model.eval()
    inputs = DecodeInput(batch.src, batch.tgt_in[:, :1], eos_id=3, pad_id=0)
    decoded = [list(h.tokens) for h in generate(model, inputs, "greedy").best()]
    assert decoded == [example.tgt[1:-1] for example in examples]


def test_an_s2a_run_resumes_exactly(tmp_path: Path) -> None:
    quiet = {"log": lambda message: None}
    straight = tiny_experiment(tmp_path / "data", tmp_path / "straight", steps=6, eval_every=3)
    straight = replace(straight, model=replace(straight.model, actions=Actions.S2A),
                       data=replace(straight.data, directions=("num-en",)))
    train(straight, **quiet)
    stopped = replace(straight, train=replace(straight.train, output_dir=str(tmp_path / "resumed"), steps=3))
    train(stopped, **quiet)
    train(replace(stopped, train=replace(stopped.train, steps=6)), resume=True, **quiet)
    expected, actual = load_model(tmp_path / "straight" / "last"), load_model(tmp_path / "resumed" / "last")
    for (name, a), (_, b) in zip(expected.state_dict().items(), actual.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_a_model_directory_from_before_actions_loads_as_a_plain_model(tiny_model_dir: Path,
                                                                       tmp_path: Path) -> None:
    old = Path(shutil.copytree(tiny_model_dir, tmp_path / "old"))
    config = json.loads((old / "config.json").read_text())
    for key in ("actions", "skip_id"):
        del config["model"][key]
    (old / "config.json").write_text(json.dumps(config))
    model = load_model(old)
    assert type(model) is Seq2Seq and model.config.actions is Actions.NONE
