"""GO/NO-GO gate: a cheap pilot run must beat the baseline before the expensive run trains.

The decision and its checks (no model, no torch); the pilot run itself is guard/pilot.py.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from tunetrace.config import spec_from_dict
from tunetrace.evaluation.metrics import relative_improvement
from tunetrace.fileio import read_json, write_json

log = logging.getLogger(__name__)
GO, NO_GO = "GO", "NO-GO"


class GateClosed(RuntimeError):
    """A NO-GO gate with enforce: the main run must not train."""


@dataclasses.dataclass(frozen=True)
class GateSpec:
    SCHEMA_SECTION: ClassVar[str] = "$defs/method/properties/gate"

    enabled: bool
    pilot_steps: int
    threshold: float
    baseline: str
    enforce: bool

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateSpec:
        return spec_from_dict(cls, data)

    @classmethod
    def from_method(cls, method: Mapping[str, Any]) -> GateSpec:
        """The gate block of a method's config slice (its absent keys take the schema's defaults)."""
        return cls.from_dict(method["gate"])


def decide(metric: str, baseline_value: float, pilot_value: float, threshold: float, *, higher_is_better: bool,
           pilot_loss: float | None = None) -> dict[str, Any]:
    """GO when the pilot improves on the baseline by at least `threshold` (relative, direction-aware)."""
    improvement = relative_improvement(pilot_value, baseline_value, higher_is_better)
    reasons = []
    if pilot_loss is not None and not math.isfinite(pilot_loss):
        reasons.append(f"pilot train loss is {pilot_loss}")
    direction = "higher" if higher_is_better else "lower"
    if not improvement >= threshold:
        reasons.append(f"pilot {metric} {pilot_value:.4f} vs baseline {baseline_value:.4f}: relative improvement "
                       f"{improvement:+.4f} < threshold {threshold:+.4f} ({direction} is better)")
    # a zero baseline gives an infinite relative improvement; JSON gets null and the absolute gain
    return {"decision": NO_GO if reasons else GO,
            "relative_improvement": improvement if math.isfinite(improvement) else None,
            "absolute_improvement": pilot_value - baseline_value, "reasons": reasons}


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


def as_paths(value: str | Sequence[str] | None) -> list[str]:
    """A Snakemake input that is one path, a list of paths or nothing, as a list."""
    if not value:
        return []
    return [value] if isinstance(value, (str, os.PathLike)) else [str(v) for v in value]


def check_gates(paths: str | Sequence[str] | None) -> list[dict[str, Any]]:
    """Raise GateClosed on a NO-GO gate with enforce; log a warning for a NO-GO without it."""
    gates = []
    for path in as_paths(paths):
        gate = read_json(path)
        gates.append(gate)
        if gate["decision"] == GO:
            log.info("gate %s: GO (relative improvement %s)", path, gate["relative_improvement"])
            continue
        message = (f"gate {path} says NO-GO: pilot {gate['metric']} {gate['pilot']['value']:.4f} vs baseline "
                   f"{gate['baseline']['name']} {gate['baseline']['value']:.4f}, relative improvement "
                   f"{gate['relative_improvement']}, threshold {gate['threshold']}: " + "; ".join(gate["reasons"]))
        if gate["enforce"]:
            raise GateClosed(message + ". Training stopped before it started; improve the method or set "
                             f"methods.{gate['method']}.gate.enforce: false (or gate.threshold) to train anyway.")
        log.warning("%s (enforce is false: training anyway)", message)
    return gates
