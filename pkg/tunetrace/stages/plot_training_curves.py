"""Stage of rule plot_training_curves: train and eval loss over steps of one task's runs, flagged runs marked."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from tunetrace.guard.validation import CRITICAL, read_train_log
from tunetrace.reporting.curves import RunCurve, plot_loss_curves


def run_curve(log_path: str | os.PathLike, validation_path: str | os.PathLike, task: str) -> RunCurve:
    """One run's curve: its log records, its method and seed and critical codes from its validation report."""
    with open(validation_path, encoding="utf-8") as handle:
        report = json.load(handle)
    if report["task"] != task:
        raise ValueError(
            f"{validation_path}: a validation report of task {report['task']!r} given for task {task!r}; "
            "the rule's input function must list each task's own runs"
        )
    codes = sorted({f["code"] for f in report["flags"] if f["severity"] == CRITICAL})
    return RunCurve(report["method"], int(report["seed"]), read_train_log(log_path), tuple(codes))


def plot_task_curves(
    logs: Sequence[str | os.PathLike],
    validations: Sequence[str | os.PathLike],
    task: str,
    out_path: str | os.PathLike,
) -> set[str]:
    """The loss-curve plot of one task; `logs` and `validations` list the same runs in the same order. Returns
    the labels of the runs marked flagged."""
    if len(logs) != len(validations):
        raise ValueError(
            f"{len(logs)} training logs but {len(validations)} validation reports for task {task!r}: "
            "rules/common.smk get_task_curve_inputs must list both for every run"
        )
    runs = [run_curve(log, report, task) for log, report in zip(logs, validations, strict=True)]
    return plot_loss_curves(runs, f"{task}: train (solid) and eval (dashed) loss", out_path)
