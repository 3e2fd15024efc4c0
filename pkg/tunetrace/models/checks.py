"""Early model checks (rule check_model): whatever about the base model can fail is found before any job loads
weights. The model's name must resolve (a local directory with config.json; offline, a hub id in the local
cache), its config must load, and every LoRA method's target modules must name layers of the task type's
model, which is built from the config on the meta device (module names and shapes, no weights, no memory).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import torch

from tunetrace.config import LoraSpec, ModelSpec, TaskSpec
from tunetrace.fileio import write_json
from tunetrace.models.loading import linear_layer_names, lora_targets, matching_modules
from tunetrace.tasks.dispatch import get_task_type

log = logging.getLogger(__name__)


def check_model(model_spec: ModelSpec, task: TaskSpec, lora: Mapping[str, LoraSpec],
                out_path: str | os.PathLike) -> dict[str, Any]:
    """Check the base model for one task and the LoRA targets of each method in `lora` (method name -> its
    LoRA settings); write a summary (model config, the type's model class, resolved targets) to `out_path`.
    A problem raises models.names.ModelError naming the config key and the fix, and nothing is written."""
    skeleton = get_task_type(task.type).model_skeleton(model_spec, task)
    summary = {
        "model": _config_summary(model_spec, skeleton.config),
        "task": {"name": task.name, "type": task.type, "model_class": type(skeleton).__name__,
                 "parameters": int(sum(p.numel() for p in skeleton.parameters()))},
        "linear_layers": linear_layer_names(skeleton),
        "lora": {name: _resolved_targets(skeleton, name, spec) for name, spec in sorted(lora.items())},
    }
    write_json(out_path, summary)
    log.info("model %s for task %s: %s, %d parameters; LoRA targets %s", model_spec.name_or_path, task.name,
             summary["task"]["model_class"], summary["task"]["parameters"],
             {name: entry["target_modules"] for name, entry in summary["lora"].items()})
    return summary


def _config_summary(model_spec: ModelSpec, config: Any) -> dict[str, Any]:
    """The config facts a reader of the check wants (None where the architecture does not define one)."""
    return {"name_or_path": model_spec.name_or_path, "revision": model_spec.revision,
            "model_type": getattr(config, "model_type", None), "architectures": getattr(config, "architectures", None),
            **{key: getattr(config, key, None) for key in ("hidden_size", "num_hidden_layers", "vocab_size")}}


def _resolved_targets(skeleton: torch.nn.Module, method: str, spec: LoraSpec) -> dict[str, Any]:
    """One LoRA method's target modules (configured or the architecture default), checked against the skeleton."""
    targets = lora_targets(skeleton, spec, key=f"methods.{method}.lora.target_modules")
    return {"target_modules": targets, "from": "config" if spec.target_modules else "architecture default",
            "modules": len(matching_modules(skeleton, targets))}
