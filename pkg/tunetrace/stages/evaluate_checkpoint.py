"""Stage of rule evaluate_checkpoint: score one saved checkpoint of a run (step N) on the eval split, as
evaluate_run scores the final model: metrics, predictions and a report under results/eval/.../step{N}/.

The checkpoint is loaded as the final model is (the task type's `load_tuned_model`: LoRA checkpoints hold the
adapter), its outputs come from the task type's `predict` and are scored by its `score`, so a checkpoint's
numbers and the final model's are comparable row for row.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from tunetrace.data.readers import load_prepared
from tunetrace.models.placement import placement_for
from tunetrace.stages.evaluate import write_evaluation
from tunetrace.tasks.dispatch import get_task_type
from tunetrace.training.checkpoints import checkpoint_step

log = logging.getLogger(__name__)


class CheckpointMissing(FileNotFoundError):
    """The run saved no checkpoint at the requested step."""


def find_checkpoint(checkpoints_dir: str | os.PathLike, step: int, method: str) -> Path:
    """The run's `checkpoint-{step}` directory; its absence names the steps there are and the key that saves them."""
    found = {checkpoint_step(p): p for p in Path(checkpoints_dir).glob("checkpoint-*") if checkpoint_step(p)}
    if step not in found:
        saved = sorted(found) or "none"
        raise CheckpointMissing(
            f"{checkpoints_dir}: no checkpoint at step {step} (saved steps: {saved}); ask for "
            f"one of those, or set methods.{method}.save_every_steps so that the run saves that "
            "step (and rerun it)"
        )
    return found[step]


def evaluate_checkpoint(
    model_spec: ModelSpec,
    task: TaskSpec,
    method: MethodSpec,
    spec: EvalSpec,
    seed: int,
    step: int,
    data_dir: str | os.PathLike,
    checkpoints_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
) -> dict[str, Any]:
    """Load checkpoint `step` of the run, predict the eval split, score it; write metrics (with the step and the
    checkpoint's path), predictions and a report."""
    checkpoint = find_checkpoint(checkpoints_dir, step, method.name)
    task_type = get_task_type(task.type)
    _, frame = load_prepared(data_dir)
    tokenizer = task_type.load_tokenizer(model_spec, str(checkpoint))
    placement = placement_for(model_spec)  # the job's GPUs, as evaluate_baseline places the base model
    model = task_type.load_tuned_model(model_spec, task, method, checkpoint, placement=placement)
    outputs = task_type.predict(model, tokenizer, frame, task, method.batch_size)
    evaluation = task_type.score(outputs, frame, task, spec, seed)
    metric = evaluation.metrics["primary_metric"]
    evaluation.metrics.update(
        {
            "method": method.name,
            "task": task.name,
            "seed": seed,
            "step": step,
            "checkpoint": str(checkpoint),
            "higher_is_better": task_type.higher_is_better(metric),
            "placement": placement.to_dict(),
        }
    )
    write_evaluation(evaluation, f"{method.name} / {task.name} / seed {seed} / step {step}", out_dir)
    log.info(
        "%s/%s seed %d step %d: %s = %.4f", method.name, task.name, seed, step, metric, evaluation.metrics["primary"]
    )
    return evaluation.metrics
