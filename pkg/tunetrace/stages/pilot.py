"""Stage of rule pilot_run: the pilot of a GO/NO-GO gate, the method cut to a few steps (guard.gates.pilot_method),
trained like train_run trains the method (training.launch: its GPUs, processes, DeepSpeed stage and nodes) and
evaluated like any run."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

from tunetrace import artifacts as A
from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from tunetrace.guard.gates import GateSpec, pilot_method
from tunetrace.training.launch import TrainingJob, method_slice, run_training


def run_pilot(job: TrainingJob, gate: GateSpec, spec: EvalSpec, threads: int = 1) -> dict[str, Any]:
    """Train the pilot of `job` (its run_dir is the pilot's directory) through the launcher train_run uses, and
    evaluate it; keep its log, run.json and metrics, drop its weights."""
    model_spec, task, method = job.specs()
    pilot = pilot_method(method, gate)
    out = Path(job.run_dir)
    run_training(dataclasses.replace(job, method=method_slice(pilot, job.method)), threads=threads)
    metrics = score_pilot(model_spec, task, pilot, spec, job.seed, job.data_dir, out, out)
    for weights in (A.FINAL_DIR, A.CHECKPOINTS_DIR):
        shutil.rmtree(out / weights, ignore_errors=True)
    return metrics


def score_pilot(
    model_spec: ModelSpec,
    task: TaskSpec,
    method: MethodSpec,
    spec: EvalSpec,
    seed: int,
    data_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
) -> dict[str, Any]:
    """Both halves of a run's evaluation in one call (pilot runs, tests): the outputs of `run_dir`'s saved final
    model (`stages.train.predict_final`), then their scores (`stages.evaluate.score_run`)."""
    from tunetrace.stages.evaluate import score_run
    from tunetrace.stages.train import predict_final

    outputs_path = Path(run_dir) / A.EVAL_OUTPUTS
    predict_final(model_spec, task, method, data_dir, run_dir, outputs_path)
    return score_run(task, method, spec, seed, data_dir, outputs_path, out_dir)
