"""Stage of rule extract_base_representations: step 0 of the pretrained model on the probe set (the same model
every run of the task starts from), through the task type's probe inputs and model."""

from __future__ import annotations

import logging
import os
from typing import Any

from tunetrace.analysis.representations import capture_step, probe_for
from tunetrace.analysis.steps import RepresentationSpec
from tunetrace.config import ModelSpec, TaskSpec
from tunetrace.models.placement import placement_for
from tunetrace.tasks.dispatch import get_task_type

log = logging.getLogger(__name__)


def extract_base_representations(
    model_spec: ModelSpec,
    task: TaskSpec,
    spec: RepresentationSpec,
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
) -> dict[str, Any]:
    """Step 0 of the pretrained model (the same model every run of the task starts from)."""
    probe = probe_for(model_spec, task, spec, data_dir)
    placement = placement_for(model_spec)
    model = get_task_type(task.type).load_model(model_spec, task, placement=placement)
    info = {
        "model": model_spec.name_or_path,
        "run": f"base/{task.name}",
        "task": task.name,
        "step": 0,
        "placement": placement.to_dict(),
    }
    meta = capture_step(model, probe, spec, out_dir, info)
    log.info(
        "base representations of %s: %d layers x %d probe examples -> %s",
        task.name,
        len(meta["layers"]),
        len(probe.ids),
        out_dir,
    )
    return meta
