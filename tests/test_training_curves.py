"""The per-task training-curve plot (rule plot_training_curves) on synthetic logs and validation reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunetrace.reporting.comparison import add_curve_plots, curve_markdown
from tunetrace.reporting.curves import loss_series
from tunetrace.stages.plot_training_curves import plot_task_curves


def write_run(root: Path, method: str, seed: int, flags: list[dict], task: str = "tiny") -> tuple[Path, Path]:
    """A train_log.jsonl (train loss each step, eval loss every other, the Trainer's summary) and its report."""
    log = root / "runs" / method / task / f"seed{seed}" / "train_log.jsonl"
    log.parent.mkdir(parents=True)
    records = [{"step": s, "loss": 1.0 / s} for s in range(1, 7)]
    records += [{"step": s, "eval_loss": 1.2 / s} for s in (2, 4, 6)]
    records.append({"step": 6, "train_runtime": 1.0, "train_loss": 0.5})
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    report = root / "validation" / method / task / f"seed{seed}.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps({"method": method, "task": task, "seed": seed, "flags": flags}))
    return log, report


def test_flagged_runs_are_marked_and_the_plot_written(tmp_path):
    """Only the run with a critical flag is labelled flagged; a warning alone marks nothing."""
    critical = {"severity": "critical", "code": "loss_at_chance", "message": "m", "files": []}
    warning = {"severity": "warning", "code": "loss_noisy", "message": "m", "files": []}
    runs = [
        write_run(tmp_path, "full", 0, []),
        write_run(tmp_path, "full", 1, [warning]),
        write_run(tmp_path, "lora_r8", 0, [critical, warning]),
    ]
    out = tmp_path / "plots" / "training" / "tiny_loss_curves.png"
    flagged = plot_task_curves([r[0] for r in runs], [r[1] for r in runs], "tiny", out)
    assert flagged == {"lora_r8 seed 0"}
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_report_of_another_task_is_refused(tmp_path):
    """A validation report of another task stops the plot with both task names."""
    log, report = write_run(tmp_path, "full", 0, [], task="squad")
    with pytest.raises(ValueError, match="'squad' given for task 'tiny'"):
        plot_task_curves([log], [report], "tiny", tmp_path / "out.png")


def test_loss_series_skips_the_summary_and_non_finite_values():
    """The Trainer's closing record and a NaN loss are no points of the curve."""
    records = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": float("nan")}, {"step": 3, "loss": 1.0}]
    records.append({"step": 3, "loss": 9.0, "train_runtime": 1.0})
    assert loss_series(records, "loss") == ([1, 3], [2.0, 1.0])
    assert loss_series(records, "eval_loss") == ([], [])


def test_comparison_lists_and_embeds_each_tasks_curve_plot():
    """Each task's entry lists its own curve plot and comparison.md embeds it relative to results/."""
    document = {"tasks": {"tiny": {}, "squad": {}}}
    plots = ["results/plots/training/squad_loss_curves.png", "results/plots/training/tiny_loss_curves.png"]
    add_curve_plots(document, plots)
    assert document["tasks"]["tiny"]["curve_plots"] == ["results/plots/training/tiny_loss_curves.png"]
    assert "![train and eval loss over steps](plots/training/squad_loss_curves.png)" in curve_markdown(
        document["tasks"]["squad"]["curve_plots"]
    )
