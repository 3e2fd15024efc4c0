"""Stage of rule evaluate_gate: the GO/NO-GO decision of a pilot against the task's baseline (guard.gates)."""

from __future__ import annotations

import logging
import os
from typing import Any

from tunetrace.fileio import read_json, write_json
from tunetrace.guard.gates import GateSpec, decide

log = logging.getLogger(__name__)


def evaluate_gate(gate: GateSpec, pilot_metrics_path: str | os.PathLike, pilot_run_path: str | os.PathLike,
                  baseline_path: str | os.PathLike, out_path: str | os.PathLike) -> dict[str, Any]:
    """Write the gate decision: baseline and pilot values, improvement, threshold, decision, reasons."""
    pilot, run, baseline = read_json(pilot_metrics_path), read_json(pilot_run_path), read_json(baseline_path)
    metric = baseline["primary_metric"]
    name = baseline["reference"] if gate.baseline == "reference" else gate.baseline
    if name not in baseline["baselines"]:
        raise ValueError(f"methods.{pilot['method']}.gate.baseline: '{name}' is not a baseline of task {pilot['task']} "
                         f"({baseline_path} has {sorted(baseline['baselines'])}); use one of those or 'reference'")
    base_value = float(baseline["baselines"][name]["primary"])
    higher = bool(baseline["higher_is_better"])
    result = decide(metric, base_value, float(pilot["primary"]), gate.threshold, higher_is_better=higher,
                    pilot_loss=run.get("final_train_loss"))
    document = {
        "method": pilot["method"], "task": pilot["task"], "seed": pilot["seed"], "metric": metric,
        "higher_is_better": higher,
        "baseline": {"name": name, "value": base_value}, "pilot": {"value": float(pilot["primary"]),
                                                                  "steps": run["global_steps"]},
        "threshold": gate.threshold, "enforce": gate.enforce, **result,
        "files": {"pilot_metrics": str(pilot_metrics_path), "baseline": str(baseline_path)},
    }
    write_json(out_path, document)
    log.info("gate %s/%s seed %s: %s (relative improvement %s, threshold %s)", document["method"],
             document["task"], document["seed"], document["decision"], result["relative_improvement"], gate.threshold)
    return document
