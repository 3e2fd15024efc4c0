"""Stage of rule evaluate_run: score a run's final model on the prepared eval split, for any task type: metrics,
predictions (Parquet, and CSV with the example's text), report.

The second of two halves (the first, `stages.train.predict_final`, runs in the training job, which loads the
saved final model back while its imports and device are warm): `score_run` scores the raw outputs the training
job wrote with the task type's `score`, so evaluate_run loads no model, what is scored is what was saved, and
changing an evaluation setting (or this module) rescores without retraining.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pandas as pd

from tunetrace import artifacts as A
from tunetrace.config import EvalSpec, MethodSpec, TaskSpec
from tunetrace.data.readers import load_prepared
from tunetrace.fileio import finite, write_json, write_text
from tunetrace.tasks.base import Evaluation
from tunetrace.tasks.dispatch import get_task_type
from tunetrace.tasks.outputs import read_outputs
from tunetrace.tasks.rows import COL_COMPLETION, COL_CONTEXT, COL_PROMPT, COL_QUESTION

log = logging.getLogger(__name__)


class OutputsMismatch(ValueError):
    """Model outputs that do not belong to the eval split they are scored against."""


# the eval split's input columns a reader of the predictions wants beside them, as far as the task type has them
INPUT_COLUMNS = (A.COL_TEXT, A.COL_TEXT_PAIR, COL_PROMPT, COL_COMPLETION, COL_QUESTION, COL_CONTEXT)
LEADING = ("id", *INPUT_COLUMNS, "label", "prediction", A.COL_GROUP, "correct")


def predictions_csv(predictions: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """The predictions table for a spreadsheet: id, the example's input text, label and prediction by name (where
    the task has classes), group, correct, then the type's own columns (probabilities, loss, shares, ...)."""
    inputs = [c for c in INPUT_COLUMNS if c in frame and c not in predictions]
    table = predictions.merge(frame[[A.COL_ID, *inputs]], on=A.COL_ID, how="left", validate="one_to_one")
    if "prediction_name" in table and A.COL_LABEL_NAME in frame:
        names = dict(zip(frame[A.COL_ID], frame[A.COL_LABEL_NAME], strict=True))
        table[A.COL_LABEL] = table[A.COL_ID].map(names)
        table["prediction"] = table.pop("prediction_name")
    table = table.rename(columns={A.COL_ID: "id"})
    leading = [c for c in LEADING if c in table]
    return table[leading + [c for c in table if c not in leading]]


def write_evaluation(
    evaluation: Evaluation, title: str, out_dir: str | os.PathLike, frame: pd.DataFrame | None = None
) -> None:
    """metrics.json, predictions.parquet (with predictions.csv when the eval split `frame` is given) and
    report.txt of one evaluation (the metrics file last)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if evaluation.predictions is not None:
        evaluation.predictions.to_parquet(out / A.PREDICTIONS, index=False)
        if frame is not None:
            predictions_csv(evaluation.predictions, frame).to_csv(out / A.PREDICTIONS_CSV, index=False)
    write_text(out / A.EVAL_REPORT, f"{title}\n{'=' * len(title)}\n{evaluation.report}")
    write_json(out / A.METRICS, finite(evaluation.metrics))


def score_run(
    task: TaskSpec,
    method: MethodSpec,
    spec: EvalSpec,
    seed: int,
    data_dir: str | os.PathLike,
    outputs_path: str | os.PathLike,
    out_dir: str | os.PathLike,
) -> dict[str, Any]:
    """Score a run's final-model outputs on the eval split; write metrics, predictions (.parquet, .csv), a report."""
    task_type = get_task_type(task.type)
    _, frame = load_prepared(data_dir)
    outputs = read_outputs(outputs_path)
    ids = outputs.table[A.COL_ID].astype(str).tolist() if A.COL_ID in outputs.table else None
    if ids != frame[A.COL_ID].astype(str).tolist():
        raise OutputsMismatch(
            f"{outputs_path}: its examples are not the eval split's ({len(outputs.table)} rows "
            f"against {len(frame)} in {Path(data_dir) / A.EVAL_SPLIT}); rerun the run: "
            f"snakemake --forcerun train_run {outputs_path}"
        )
    evaluation = task_type.score(outputs, frame, task, spec, seed)
    metric = evaluation.metrics["primary_metric"]
    evaluation.metrics.update(
        {
            "method": method.name,
            "task": task.name,
            "seed": seed,
            "higher_is_better": task_type.higher_is_better(metric),
            # where train_run's final model computed these outputs (models.placement)
            "placement": outputs.info.get("placement"),
        }
    )
    write_evaluation(evaluation, f"{method.name} / {task.name} / seed {seed}", out_dir, frame)
    log.info("%s/%s seed %d: %s = %.4f", method.name, task.name, seed, metric, evaluation.metrics["primary"])
    return evaluation.metrics
