"""Evaluate a run's final model on the prepared eval split, for any task type: metrics, predictions, report."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from tunetrace import artifacts as A
from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from tunetrace.data.prepare import load_prepared
from tunetrace.fileio import finite, write_json, write_text
from tunetrace.tasks.base import Evaluation
from tunetrace.tasks.dispatch import get_task_type

log = logging.getLogger(__name__)


def write_evaluation(evaluation: Evaluation, title: str, out_dir: str | os.PathLike) -> None:
    """metrics.json, predictions.parquet and report.txt of one evaluation (the metrics file last)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if evaluation.predictions is not None:
        evaluation.predictions.to_parquet(out / A.PREDICTIONS, index=False)
    write_text(out / A.EVAL_REPORT, f"{title}\n{'=' * len(title)}\n{evaluation.report}")
    write_json(out / A.METRICS, finite(evaluation.metrics))


def evaluate_run(model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, spec: EvalSpec, seed: int,
                 data_dir: str | os.PathLike, run_dir: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Score a run's final model on the eval split; write metrics, predictions and a report."""
    task_type = get_task_type(task.type)
    _, frame = load_prepared(data_dir)
    final = Path(run_dir) / A.FINAL_DIR
    tokenizer = task_type.load_tokenizer(model_spec, str(final))
    model = task_type.load_tuned_model(model_spec, task, method, final)
    evaluation = task_type.evaluate(model, tokenizer, frame, task, spec, seed)
    metric = evaluation.metrics["primary_metric"]
    evaluation.metrics.update({"method": method.name, "task": task.name, "seed": seed,
                               "higher_is_better": task_type.higher_is_better(metric)})
    write_evaluation(evaluation, f"{method.name} / {task.name} / seed {seed}", out_dir)
    log.info("%s/%s seed %d: %s = %.4f", method.name, task.name, seed, metric, evaluation.metrics["primary"])
    return evaluation.metrics
