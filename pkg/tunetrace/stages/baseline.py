"""Stage of rule evaluate_baseline: what the pretrained model (or a trivial predictor) scores before fine-tuning,
for any task type."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from tunetrace import artifacts as A
from tunetrace.config import EvalSpec, ModelSpec, TaskSpec
from tunetrace.fileio import finite, write_json
from tunetrace.models.placement import placement_for
from tunetrace.tasks.dispatch import get_task_type
from tunetrace.tasks.partial import BatchStore, files_fingerprint, fingerprint

log = logging.getLogger(__name__)


def evaluate_baseline(
    model_spec: ModelSpec,
    task: TaskSpec,
    spec: EvalSpec,
    data_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    seed: int = 0,
) -> dict[str, Any]:
    """The task type's baselines; the reference is the best of them. Its predictions go beside the metrics.
    The base model's forward passes keep each finished batch beside `out_path` (tasks.partial): a killed job
    resumes where it stopped."""
    task_type = get_task_type(task.type)
    store = BatchStore.beside(
        out_path, fingerprint("baseline", model_spec, task, spec, seed, files_fingerprint(data_dir))
    )
    evaluation = task_type.baseline(model_spec, task, spec, data_dir, seed, store=store)
    metric = evaluation.metrics["primary_metric"]
    # the placement a model baseline loads with (models.placement; trivial baselines load none)
    document = {
        "task": task.name,
        "model": model_spec.name_or_path,
        **evaluation.metrics,
        "higher_is_better": task_type.higher_is_better(metric),
        "placement": placement_for(model_spec).to_dict(),
    }
    if evaluation.predictions is None:
        raise TypeError(f"task type {task.type}: baseline() returned no predictions (the contract requires them)")
    Path(out_path).parent.mkdir(parents=True, exist_ok=True)
    evaluation.predictions.to_parquet(Path(out_path).with_name(A.PREDICTIONS), index=False)
    write_json(out_path, finite(document))
    store.finish()
    log.info("baseline %s: %s %s = %.4f", task.name, document["reference"], metric, document["primary"])
    return document
