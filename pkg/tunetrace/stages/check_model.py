"""Stage of rule check_model, the early model checks: whatever about the base model can fail is found before any
job loads weights. The model's name must resolve (a local directory with config.json; offline, a hub id in the local
cache), its config must load, and every LoRA method's target modules must name layers of the task type's
model, whose layout (module names and kinds) comes from the model built from the config on the meta device
(no weights, no memory), or from this machine's cache of such layouts (models.layout).

Imports no torch: with the layout cached, the check reads a few JSON files.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from tunetrace.config import LoraSpec, ModelSpec, TaskSpec
from tunetrace.fileio import write_json
from tunetrace.models.layout import (
    ModelLayout,
    cache_file,
    layout_key,
    linear_layer_names,
    lora_targets,
    matching_modules,
    parameter_targets,
    read_cached,
    write_cached,
)
from tunetrace.models.names import ModelError
from tunetrace.tasks.dispatch import get_task_type

log = logging.getLogger(__name__)


def check_model(model_spec: ModelSpec, task: TaskSpec, lora: Mapping[str, LoraSpec],
                out_path: str | os.PathLike) -> dict[str, Any]:
    """Check the base model for one task and the LoRA targets of each method in `lora` (method name -> its
    LoRA settings); write a summary (model config, the type's model class, resolved targets) to `out_path`.
    A problem raises models.names.ModelError naming the config key and the fix, and nothing is written."""
    key = layout_key(task.type, model_spec, task)
    layout = read_cached(key)
    summary = None
    if key is not None and layout is not None:
        try:
            summary = _summary(model_spec, task, lora, layout)
            log.info("model layout read from the cache: %s", cache_file(key))
        except ModelError as err:  # the cache may only speed up a pass: a refusal is confirmed on a built model
            log.info("the cached model layout refuses (%s); confirming on the model built from its config", err)
    if summary is None:
        start = time.perf_counter()
        layout = ModelLayout.of(get_task_type(task.type).model_skeleton(model_spec, task))
        log.info("model layout built on the meta device in %.2f s", time.perf_counter() - start)
        write_cached(key, layout)
        summary = _summary(model_spec, task, lora, layout)
    write_json(out_path, summary)
    log.info("model %s for task %s: %s, %d parameters; LoRA targets %s", model_spec.name_or_path, task.name,
             summary["task"]["model_class"], summary["task"]["parameters"],
             {name: entry["target_modules"] for name, entry in summary["lora"].items()})
    return summary


def _summary(model_spec: ModelSpec, task: TaskSpec, lora: Mapping[str, LoraSpec],
             layout: ModelLayout) -> dict[str, Any]:
    return {
        "model": {"name_or_path": model_spec.name_or_path, "revision": model_spec.revision, **layout.config},
        "task": {"name": task.name, "type": task.type, "model_class": layout.model_class,
                 "parameters": layout.parameters},
        "linear_layers": linear_layer_names(layout),
        "lora": {name: _resolved_targets(layout, name, spec) for name, spec in sorted(lora.items())},
    }


def _resolved_targets(layout: ModelLayout, method: str, spec: LoraSpec) -> dict[str, Any]:
    """One LoRA method's target modules (configured or the architecture default), checked against the layout."""
    targets = lora_targets(layout, spec, key=f"methods.{method}.lora.target_modules")
    parameters = parameter_targets(layout, spec, key=f"methods.{method}.lora.target_parameters")
    resolved = {"target_modules": targets, "from": "config" if spec.target_modules else "architecture default",
                "modules": len(matching_modules(layout, targets))}
    return {**resolved, "target_parameters": parameters} if parameters else resolved
