"""Stage of rule evaluate_gate: the GO/NO-GO decision of a pilot against the task's baseline (guard.gates)."""

from __future__ import annotations

import logging
import os
from typing import Any

from tunetrace.fileio import read_json, write_json
from tunetrace.guard.gates import GateSpec, baseline_name, decide

log = logging.getLogger(__name__)


def evaluate_gate(
    gate: GateSpec,
    pilot_metrics_path: str | os.PathLike,
    pilot_run_path: str | os.PathLike,
    baseline_path: str | os.PathLike,
    out_path: str | os.PathLike,
) -> dict[str, Any]:
    """Write the gate decision: baseline and pilot values, improvement, threshold, decision, reasons."""
    pilot, run, baseline = read_json(pilot_metrics_path), read_json(pilot_run_path), read_json(baseline_path)
    metric = baseline["primary_metric"]
    name = baseline_name(gate.baseline, baseline)
    if name not in baseline["baselines"]:
        why = (
            " (base_model: the task type adds an untrained head, so it has no base-model score)"
            if gate.baseline == "base_model"
            else ""
        )
        raise ValueError(
            f"methods.{pilot['method']}.gate.baseline: '{gate.baseline}' is not a baseline of task "
            f"{pilot['task']}{why} ({baseline_path} has {sorted(baseline['baselines'])}); use one of "
            "those or 'reference'"
        )
    base_value = float(baseline["baselines"][name]["primary"])
    higher = bool(baseline["higher_is_better"])
    result = decide(
        metric,
        base_value,
        float(pilot["primary"]),
        gate.threshold,
        higher_is_better=higher,
        pilot_loss=run.get("final_train_loss"),
    )
    document = {
        "method": pilot["method"],
        "task": pilot["task"],
        "seed": pilot["seed"],
        "metric": metric,
        "higher_is_better": higher,
        "baseline": {"name": name, "requested": gate.baseline, "value": base_value},
        "pilot": {"value": float(pilot["primary"]), "steps": run["global_steps"]},
        "threshold": gate.threshold,
        "enforce": gate.enforce,
        **result,
        "files": {"pilot_metrics": str(pilot_metrics_path), "baseline": str(baseline_path)},
    }
    write_json(out_path, document)
    log.info(
        "gate %s/%s seed %s: %s (relative improvement %s, threshold %s)",
        document["method"],
        document["task"],
        document["seed"],
        document["decision"],
        result["relative_improvement"],
        gate.threshold,
    )
    return document
