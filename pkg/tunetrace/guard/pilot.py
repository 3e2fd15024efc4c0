"""The pilot of a GO/NO-GO gate: the method cut to a few steps, trained and evaluated like any run."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

from tunetrace import artifacts as A
from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from tunetrace.guard.gates import GateSpec


def pilot_method(method: MethodSpec, gate: GateSpec) -> MethodSpec:
    """The method cut to a pilot: `pilot_steps` steps, no checkpoints, no evaluation during training."""
    return dataclasses.replace(method, max_steps=gate.pilot_steps, save_every_steps=None, save_total_limit=None,
                               eval_every_steps=None, early_stopping_patience=None,
                               logging_steps=min(method.logging_steps, gate.pilot_steps))


def run_pilot(model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, gate: GateSpec, spec: EvalSpec, seed: int,
              data_dir: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Train the pilot and evaluate it; keep its log, run.json and metrics, drop its weights."""
    from tunetrace.evaluation.evaluate import evaluate_run
    from tunetrace.training.loop import train_run

    out = Path(out_dir)
    pilot = pilot_method(method, gate)
    train_run(model_spec, task, pilot, seed, data_dir, out)
    metrics = evaluate_run(model_spec, task, pilot, spec, seed, data_dir, out, out)
    for weights in (A.FINAL_DIR, A.CHECKPOINTS_DIR):
        shutil.rmtree(out / weights, ignore_errors=True)
    return metrics
