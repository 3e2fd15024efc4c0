"""Stage of rule run_smoke_test (target `smoke`): the cheap infrastructure test to run before an expensive job.

Trains, through the launcher train_run uses, a handful of steps on one repeated batch (so the loss must fall),
with a checkpoint every few steps; reloads every checkpoint (files, hashes, finite logits); resumes from a middle
checkpoint and checks the resumed run ends where the uninterrupted one did.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

from tunetrace import artifacts as A
from tunetrace.config import MethodSpec, ValidationSpec
from tunetrace.data.readers import load_prepared
from tunetrace.fileio import read_json, write_json
from tunetrace.guard.validation import (
    CRITICAL,
    check_files,
    check_model_loads,
    probe_batch,
    read_train_log,
)
from tunetrace.training.launch import TrainingJob, method_slice, run_training

log = logging.getLogger(__name__)


class SmokeFailed(RuntimeError):
    """The smoke test found a broken piece of the training infrastructure."""


def smoke_method(method: MethodSpec, spec: ValidationSpec) -> MethodSpec:
    return dataclasses.replace(
        method,
        max_steps=spec.smoke_steps,
        save_every_steps=spec.smoke_save_every_steps,
        save_total_limit=None,
        eval_every_steps=None,
        early_stopping_patience=None,
        logging_steps=1,
        warmup_ratio=0.0,
    )


def one_batch_data(data_dir: str | os.PathLike, rows: int, out_dir: Path) -> Path:
    """A prepared-data directory whose train split is the first `rows` training rows."""
    train, evaluation = load_prepared(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train.head(rows).to_parquet(out_dir / A.TRAIN_SPLIT, index=False)
    evaluation.head(rows).to_parquet(out_dir / A.EVAL_SPLIT, index=False)
    return out_dir


def _losses(run_dir: Path) -> dict[int, float]:
    return {r["step"]: float(r["loss"]) for r in read_train_log(run_dir / A.TRAIN_LOG) if "loss" in r}


def run_smoke(
    job: TrainingJob, spec: ValidationSpec, work_dir: str | os.PathLike, out_path: str | os.PathLike, threads: int = 1
) -> dict[str, Any]:
    """Run every smoke check, write the report, raise SmokeFailed when one fails. Both trainings go through the
    launcher train_run uses (training.launch: the method's GPUs, processes, DeepSpeed stage and nodes)."""
    model_spec, task, method = job.specs()
    seed = job.seed
    work = Path(work_dir)
    shutil.rmtree(work, ignore_errors=True)
    smoke = smoke_method(method, spec)
    data = one_batch_data(job.data_dir, smoke.batch_size * smoke.world_size, work / "data")
    smoke_job = dataclasses.replace(
        job, method=method_slice(smoke, job.method), data_dir=str(data), run_dir=str(work / "run"), resume_dir=None
    )
    run_training(smoke_job, threads=threads)
    checkpoints = sorted(
        (work / "run" / A.CHECKPOINTS_DIR).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])
    )
    batch = probe_batch(model_spec, task, data, spec.probe_examples)
    flags = [f for d in checkpoints for f in check_files(d, None, d.name)]
    flags += check_model_loads(
        model_spec, task, smoke, checkpoints, work / "run" / A.FINAL_DIR, batch, spec.reload_tolerance
    )
    middle = checkpoints[(len(checkpoints) - 1) // 2] if checkpoints else None
    losses = _losses(work / "run")
    resumed: dict[int, float] = {}
    if middle is not None:
        run_training(
            dataclasses.replace(smoke_job, run_dir=str(work / "resumed"), resume_from_checkpoint=str(middle)),
            threads=threads,
        )
        resumed = _losses(work / "resumed")
    first, last = losses.get(1, math.nan), losses.get(smoke.max_steps, math.nan)
    gap = abs(resumed.get(smoke.max_steps, math.nan) - last)
    checks = {
        "checkpoints_written": len(checkpoints) == smoke.max_steps // smoke.save_every_steps,
        "checkpoints_reload": not [f for f in flags if f["severity"] == CRITICAL],
        "resume_reaches_last_step": smoke.max_steps in resumed,
        "resume_matches": gap <= 0.05 * abs(last),
        "loss_decreases": last < first,
    }
    report = {
        "method": method.name,
        "task": task.name,
        "seed": seed,
        "passed": all(checks.values()),
        "checks": checks,
        "steps": smoke.max_steps,
        "world_size": read_json(work / "run" / A.RUN_METADATA)["world_size"],
        "checkpoints": [str(c) for c in checkpoints],
        "resumed_from": str(middle),
        "first_loss": first,
        "last_loss": last,
        "resumed_last_loss": resumed.get(smoke.max_steps),
        "flags": flags,
    }
    log.info("smoke %s/%s: %s", method.name, task.name, checks)
    if not report["passed"]:
        raise SmokeFailed(
            f"smoke test of {method.name}/{task.name} failed: "
            + ", ".join(k for k, ok in checks.items() if not ok)
            + f"; details: {report}"
        )
    write_json(out_path, {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in report.items()})
    shutil.rmtree(work, ignore_errors=True)  # the weights are only kept when a check fails, for inspection
    return report
