"""Stage of rule verify_merge: run the adapter model and the merged model on the eval split and prove they agree,
for any task type (the type names the quantities compared and their tolerances)."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

from tunetrace.config import EvalSpec, ModelSpec, TaskSpec
from tunetrace.data.readers import load_prepared
from tunetrace.fileio import finite, write_json
from tunetrace.models.placement import placement_for
from tunetrace.tasks.dispatch import get_task_type

log = logging.getLogger(__name__)


class MergeCheckError(RuntimeError):
    """The merged model does not reproduce the adapter model within tolerance."""


def verify_merge(
    model_spec: ModelSpec,
    task: TaskSpec,
    spec: EvalSpec,
    data_dir: str | os.PathLike,
    adapter_dir: str | os.PathLike,
    merged_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    identity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run adapter and merged model on the eval split; pass when every checked quantity is within tolerance.

    `identity` (method, task, seed) is stored in the result so the file describes itself.
    """
    task_type = get_task_type(task.type)
    _, frame = load_prepared(data_dir)
    # the adapter on the base the merge folded it into (a 4-bit QLoRA base is merged unquantised: stages.merge)
    model_spec = dataclasses.replace(model_spec, quantization=None)
    tokenizer = task_type.load_tokenizer(model_spec, str(merged_dir))
    placement = placement_for(model_spec, copies=2)  # the adapter model and the merged model side by side
    adapter = task_type.load_adapter_model(model_spec, task, adapter_dir, placement=placement)
    merged = task_type.load_model(model_spec, task, path=str(merged_dir), placement=placement)
    check = task_type.merge_check(adapter, merged, tokenizer, frame, task, spec)
    result = {
        **(identity or {}),
        "task_type": task.type,
        "passed": check.passed,
        "examples": check.examples,
        "quantities": {q.name: q.to_dict() for q in check.quantities},
        **check.details,
        "on_failure": spec.merge_failure,
        "adapter": str(adapter_dir),
        "merged": str(merged_dir),
        "placement": placement.to_dict(),
    }
    write_json(out_path, finite(result))
    summary = ", ".join(f"{q.name} {q.value:.3g}" for q in check.quantities if q.checked and q.value is not None)
    log.info("merge check %s: %s", "passed" if check.passed else "FAILED", summary)
    if not check.passed and spec.merge_failure == "error":
        raise MergeCheckError(
            f"merge check failed: {'; '.join(check.failures())} (details in {out_path}); "
            "set evaluation.merge_failure: warn to continue"
        )
    return result
