"""A many-to-many run direction by direction: validation BLEU and chrF as a table, and a plot of
validation BLEU per direction and of the share of training examples drawn from each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polyseq.evaluate import read_metrics, save_figure


def direction_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per direction: BLEU and chrF at the last validation and the best BLEU (with its step), and
    its share of the training examples drawn so far."""
    valid = [r for r in records if r.get("kind") == "valid" and r.get("directions")]
    if not valid:
        return []
    drawn: dict[str, int] = next((r["drawn"] for r in reversed(records)
                                  if r.get("kind") == "train" and r.get("drawn")), {})
    total = sum(drawn.values())
    rows = []
    for name in sorted(valid[-1]["directions"]):
        history = [(r["step"], r["directions"][name]) for r in valid if name in r["directions"]]
        best_step, best = max(history, key=lambda item: item[1]["bleu"])
        last = history[-1][1]
        rows.append({"direction": name, "bleu": last["bleu"], "chrf": last["chrf"],
                     "best_bleu": best["bleu"], "best_step": best_step,
                     "drawn": round(drawn[name] / total, 4) if name in drawn else None})
    return rows


def direction_table(metrics_path: str | Path) -> str:
    """A Markdown table of `direction_rows` from a run's metrics.jsonl ("" without validations)."""
    rows = direction_rows(read_metrics(metrics_path))
    if not rows:
        return ""
    lines = ["| direction | BLEU | chrF | best BLEU (step) | share drawn |", "|---|---|---|---|---|"]
    for row in rows:
        share = "-" if row["drawn"] is None else f"{100 * row['drawn']:.1f}%"
        lines.append(f"| {row['direction']} | {row['bleu']:.2f} | {row['chrf']:.2f} | "
                     f"{row['best_bleu']:.2f} ({row['best_step']}) | {share} |")
    return "\n".join(lines)


def plot_directions(metrics_path: str | Path, output_path: str | Path) -> Path | None:
    """Validation BLEU per direction over steps, and each direction's share of the examples
    drawn, to a PNG; None without matplotlib or with fewer than two directions."""
    records = read_metrics(metrics_path)
    valid = [r for r in records if r.get("kind") == "valid" and r.get("directions")]
    train = [r for r in records if r.get("kind") == "train" and r.get("drawn")]
    names = sorted({name for r in valid for name in r["directions"]} | {n for r in train for n in r["drawn"]})
    if len(names) < 2:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, (bleu_axis, share_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for name in names:
        points = [(r["step"], r["directions"][name]["bleu"]) for r in valid if name in r["directions"]]
        if points:
            bleu_axis.plot(*zip(*points, strict=True), "o-", label=name)
        shares = [(r["step"], r["drawn"].get(name, 0) / max(sum(r["drawn"].values()), 1)) for r in train]
        if shares:
            share_axis.plot(*zip(*shares, strict=True), ".-", label=name)
    bleu_axis.set(xlabel="step", ylabel="BLEU", title="validation BLEU per direction (greedy)")
    share_axis.set(xlabel="step", ylabel="share", title="training examples drawn so far")
    for axis in (bleu_axis, share_axis):
        if axis.lines:  # a run validated on one direction has no per-direction BLEU to show
            axis.legend(fontsize="small")
    return save_figure(figure, output_path)
