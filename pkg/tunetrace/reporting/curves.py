"""Training curves of one task: train and eval loss over steps, one line per method and seed, flagged runs marked."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# the Trainer's closing record (train_runtime, the run's mean train loss) is no point of the curve
SUMMARY_KEY = "train_runtime"


@dataclass(frozen=True)
class RunCurve:
    """One run's log records and the codes of its critical red flags (empty when it passed)."""

    method: str
    seed: int
    records: Sequence[Mapping[str, Any]]
    critical_codes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.method} seed {self.seed}"


def loss_series(records: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of `key` over the log's step records; missing and non-finite values are left out."""
    points = [
        (int(r["step"]), float(r[key]))
        for r in records
        if SUMMARY_KEY not in r and r.get(key) is not None and math.isfinite(float(r[key]))
    ]
    return [s for s, _ in points], [v for _, v in points]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_loss_curves(runs: Sequence[RunCurve], title: str, out_path: str | os.PathLike) -> set[str]:
    """Train loss (solid) and eval loss (dashed, markers) over steps, one colour per method; a run with critical
    flags gets a red cross at its last point and a 'flagged: <codes>' label. Returns the labels of the runs
    marked flagged."""
    plt = _pyplot()
    methods = sorted({run.method for run in runs})
    colours = {m: plt.get_cmap("tab10")(k % 10) for k, m in enumerate(methods)}
    fig, ax = plt.subplots(figsize=(7.0, 4.2), constrained_layout=True)
    flagged: set[str] = set()
    for run in sorted(runs, key=lambda r: (r.method, r.seed)):
        colour = colours[run.method]
        train_steps, train = loss_series(run.records, "loss")
        eval_steps, evals = loss_series(run.records, "eval_loss")
        if train:
            ax.plot(train_steps, train, "-", color=colour, lw=1.2, label=f"{run.label} train")
        if evals:
            ax.plot(eval_steps, evals, "--o", color=colour, lw=1.0, ms=3, label=f"{run.label} eval")
        if run.critical_codes and (train or evals):
            step, value = (train_steps[-1], train[-1]) if train else (eval_steps[-1], evals[-1])
            ax.plot([step], [value], "x", color="red", ms=9, mew=2)
            ax.annotate(
                f"{run.label} flagged: {', '.join(run.critical_codes)}",
                (step, value),
                textcoords="offset points",
                xytext=(-4, 6),
                ha="right",
                fontsize=7,
                color="red",
            )
            flagged.add(run.label)
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=9)
    if ax.has_data():
        ax.legend(fontsize=6, ncol=2)
    else:
        ax.text(0.5, 0.5, "no loss logged", ha="center", va="center", transform=ax.transAxes)
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
    return flagged
