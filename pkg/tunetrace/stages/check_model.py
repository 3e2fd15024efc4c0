"""Stage of rule check_model, the early model checks: whatever about the base model can fail is found before any
job loads weights. The model's name must resolve (a local directory with config.json; offline, a hub id in the local
cache), its config must load, and every LoRA method's target modules must name layers of the task type's
model, whose layout (module names and kinds) comes from the model built from the config on the meta device
(no weights, no memory), or from this machine's cache of such layouts (models.layout).

Imports no torch: with the layout cached, the check reads a few JSON files.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
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
from tunetrace.models.names import ModelError, resolve_model_path
from tunetrace.tasks.dispatch import get_task_type

log = logging.getLogger(__name__)
# config.json keys that bound the sequence length a model takes (absolute position embeddings, GPT-2's context)
POSITION_LIMITS = ("max_position_embeddings", "n_positions", "n_ctx")


def check_model(
    model_spec: ModelSpec, task: TaskSpec, lora: Mapping[str, LoraSpec], out_path: str | os.PathLike
) -> dict[str, Any]:
    """Check the base model for one task and the LoRA targets of each method in `lora` (method name -> its
    LoRA settings); write a summary (model config, the type's model class, resolved targets) to `out_path`.
    A problem raises models.names.ModelError naming the config key and the fix, and nothing is written."""
    check_max_length(model_spec, task)
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
    log.info(
        "model %s for task %s: %s, %d parameters; LoRA targets %s",
        model_spec.name_or_path,
        task.name,
        summary["task"]["model_class"],
        summary["task"]["parameters"],
        {name: entry["target_modules"] for name, entry in summary["lora"].items()},
    )
    return summary


def _summary(
    model_spec: ModelSpec, task: TaskSpec, lora: Mapping[str, LoraSpec], layout: ModelLayout
) -> dict[str, Any]:
    return {
        "model": {"name_or_path": model_spec.name_or_path, "revision": model_spec.revision, **layout.config},
        "task": {
            "name": task.name,
            "type": task.type,
            "model_class": layout.model_class,
            "parameters": layout.parameters,
        },
        "linear_layers": linear_layer_names(layout),
        "lora": {name: _resolved_targets(layout, name, spec) for name, spec in sorted(lora.items())},
    }


def _resolved_targets(layout: ModelLayout, method: str, spec: LoraSpec) -> dict[str, Any]:
    """One LoRA method's target modules (configured or the architecture default), checked against the layout."""
    targets = lora_targets(layout, spec, key=f"methods.{method}.lora.target_modules")
    parameters = parameter_targets(layout, spec, key=f"methods.{method}.lora.target_parameters")
    resolved = {
        "target_modules": targets,
        "from": "config" if spec.target_modules else "architecture default",
        "modules": len(matching_modules(layout, targets)),
    }
    return {**resolved, "target_parameters": parameters} if parameters else resolved


def model_config_file(model_spec: ModelSpec) -> Path | None:
    """The base model's config.json on this machine (a local or symbolic model, or a hub id in the local cache);
    None when it is not here yet (the layout check below downloads or refuses it)."""
    local = Path(resolve_model_path(model_spec.name_or_path)) / "config.json"
    if local.is_file():
        return local
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model_spec.name_or_path, "config.json", revision=model_spec.revision)
    except Exception:  # not a valid hub id, or no hub client: nothing to read
        return None
    return Path(cached) if isinstance(cached, str) and Path(cached).is_file() else None


def position_limit(config_file: Path) -> tuple[str, int] | None:
    """(key, value) of the model's position limit from its config.json, or None when it declares none."""
    config = json.loads(config_file.read_text())
    for key in POSITION_LIMITS:
        if isinstance(config.get(key), int) and config[key] > 0:
            return key, config[key]
    return None


def check_max_length(model_spec: ModelSpec, task: TaskSpec) -> None:
    """tasks.<name>.max_length must fit the model's positions: above them, training fails deep inside the model
    with a tensor-size error instead of here."""
    config_file = model_config_file(model_spec)
    limit = position_limit(config_file) if config_file else None
    if limit is None or task.max_length <= limit[1]:
        return
    key, value = limit
    raise ModelError(
        f"invalid config at 'tasks.{task.name}.max_length': {task.max_length} is above what model "
        f"{model_spec.name_or_path} can take ({key} = {value} in its config.json); set "
        f"tasks.{task.name}.max_length to {value} or less"
    )
