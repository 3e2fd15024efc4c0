"""GO/NO-GO gate: a cheap pilot run must beat the baseline before the expensive run trains.

The decision and its checks (no model, no torch); the pilot run and the gate's job are stages/pilot.py and
stages/gate.py.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from tunetrace import registry
from tunetrace.config import MethodSpec, spec_from_dict
from tunetrace.evaluation.metrics import relative_improvement
from tunetrace.fileio import read_json

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


def pilot_method(method: MethodSpec, gate: GateSpec) -> MethodSpec:
    """The method cut to a pilot: `pilot_steps` steps, no checkpoints, no evaluation during training."""
    return dataclasses.replace(
        method,
        max_steps=gate.pilot_steps,
        save_every_steps=None,
        save_total_limit=None,
        eval_every_steps=None,
        early_stopping_patience=None,
        logging_steps=min(method.logging_steps, gate.pilot_steps),
    )


def decide(
    metric: str,
    baseline_value: float,
    pilot_value: float,
    threshold: float,
    *,
    higher_is_better: bool,
    pilot_loss: float | None = None,
) -> dict[str, Any]:
    """GO when the pilot improves on the baseline by at least `threshold` (relative, direction-aware)."""
    improvement = relative_improvement(pilot_value, baseline_value, higher_is_better)
    reasons = []
    if pilot_loss is not None and not math.isfinite(pilot_loss):
        reasons.append(f"pilot train loss is {pilot_loss}")
    direction = "higher" if higher_is_better else "lower"
    if not improvement >= threshold:
        reasons.append(
            f"pilot {metric} {pilot_value:.4f} vs baseline {baseline_value:.4f}: relative improvement "
            f"{improvement:+.4f} < threshold {threshold:+.4f} ({direction} is better)"
        )
    # a zero baseline gives an infinite relative improvement; JSON gets null and the absolute gain
    return {
        "decision": NO_GO if reasons else GO,
        "relative_improvement": improvement if math.isfinite(improvement) else None,
        "absolute_improvement": pilot_value - baseline_value,
        "reasons": reasons,
    }


def baseline_name(requested: str, baseline: Mapping[str, Any]) -> str:
    """The entry of a baseline document (results/baseline/{task}/metrics.json) that gate.baseline names:
    `reference` is the document's reference, `base_model` the type's score of the pretrained model as it is
    (registry `base_model_baseline`: base_model, or base_prompted for generative classification)."""
    if requested == "reference":
        return str(baseline["reference"])
    if requested == "base_model":
        names = [
            e.base_model_baseline for e in registry.REGISTRY.values() if e.base_model_baseline in baseline["baselines"]
        ]
        return str(names[0]) if names else requested
    return requested


def as_paths(value: str | Sequence[str] | None) -> list[str]:
    """A Snakemake input that is one path, a list of paths or nothing, as a list."""
    if not value:
        return []
    return [value] if isinstance(value, (str, os.PathLike)) else [str(v) for v in value]


def enforce_gate(paths: str | Sequence[str] | None) -> list[dict[str, Any]]:
    """Raise GateClosed on a NO-GO gate with enforce; log a warning for a NO-GO without it."""
    gates = []
    for path in as_paths(paths):
        gate = read_json(path)
        gates.append(gate)
        if gate["decision"] == GO:
            log.info("gate %s: GO (relative improvement %s)", path, gate["relative_improvement"])
            continue
        message = (
            f"gate {path} says NO-GO: pilot {gate['metric']} {gate['pilot']['value']:.4f} vs baseline "
            f"{gate['baseline']['name']} {gate['baseline']['value']:.4f}, relative improvement "
            f"{gate['relative_improvement']}, threshold {gate['threshold']}: " + "; ".join(gate["reasons"])
        )
        if gate["enforce"]:
            raise GateClosed(
                message + ". Training stopped before it started; improve the method or set "
                f"methods.{gate['method']}.gate.enforce: false (or gate.threshold) to train anyway."
            )
        log.warning("%s (enforce is false: training anyway)", message)
    return gates
