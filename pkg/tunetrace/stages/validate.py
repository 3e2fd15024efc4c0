"""Stage of rule validate_run: every red-flag check of one run (guard.validation), written as a JSON report and a
short text, and with representations on the run's weight analysis: the base and the final model loaded (through
the task type) and compared matrix by matrix with the pure maths of analysis.weightspace.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunetrace import artifacts as A
from tunetrace.analysis.weightcache import FactorCache
from tunetrace.analysis.weightspace import (
    HEAD_PREFIXES,
    PROGRESS_EVERY_S,
    WeightSpec,
    left_singular_vectors,
    matrix_report,
)
from tunetrace.config import MethodSpec, ModelSpec, TaskSpec, ValidationSpec
from tunetrace.fileio import read_json, sha256_file, write_json, write_text
from tunetrace.guard.validation import (
    CRITICAL,
    WARNING,
    apply_severity,
    check_criteria,
    check_files,
    check_grad_norm,
    check_loss,
    check_loss_moved,
    check_metric,
    check_model_loads,
    check_overfit,
    check_representation_steps,
    check_representations,
    check_resources,
    check_weights,
    degenerate_flags,
    format_flags,
    probe_batch,
    read_train_log,
    representation_steps,
    unenforced_gate_flags,
)
from tunetrace.models.placement import placement_for
from tunetrace.provenance.lineage import read_record, recorded_hashes
from tunetrace.tasks.dispatch import get_task_type
from tunetrace.training.tracking import tracked_run_id, update_run

log = logging.getLogger(__name__)


def validate_run(
    model_spec: Any,
    task: Any,
    method: Any,
    spec: ValidationSpec,
    expected_range: Mapping[str, Any] | None,
    run_dir: str | os.PathLike,
    metrics_path: str | os.PathLike,
    data_dir: str | os.PathLike,
    out_json: str | os.PathLike,
    out_txt: str | os.PathLike,
    seed: int,
    gate_paths: Sequence[str] = (),
    representations_dir: str | os.PathLike | None = None,
    predictions_path: str | os.PathLike | None = None,
    baseline_path: str | os.PathLike | None = None,
    weight_spec: Any = None,
    weights_path: str | os.PathLike | None = None,
    representation_spec: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every red-flag check of one run; writes the JSON report and a short text. The degenerate-model
    checks against the predictions and the baselines run when their paths are given (the rule gives them);
    with `weights_path` (and its `weight_spec`) the run's weight analysis is written there and checked."""
    run_dir = Path(run_dir)
    log_path = str(run_dir / A.TRAIN_LOG)
    records = read_train_log(log_path)
    metrics = read_json(metrics_path)
    checkpoints = sorted((run_dir / A.CHECKPOINTS_DIR).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    final = run_dir / A.FINAL_DIR
    task_type, run = get_task_type(task.type), f"{method.name}/{task.name}/seed{seed}"
    num_labels = task_type.num_labels(task)  # a head over the labels, or None
    higher = task_type.higher_is_better(metrics.get("primary_metric", task.primary_metric))
    flags = [
        *check_loss(records, spec, num_labels, log_path),
        *check_grad_norm(records, spec, log_path),
        *check_loss_moved(records, spec, num_labels, run, log_path),
        *check_resources(records, spec, log_path),
        *check_metric(metrics, expected_range, str(metrics_path), higher),
        *check_criteria(metrics, task.criteria, task.type, task.name, run, str(metrics_path)),
        *check_overfit(metrics, records, spec, str(metrics_path), log_path),
        *unenforced_gate_flags(gate_paths),
    ]
    flags += degenerate_flags(
        task_type,
        task,
        method,
        spec,
        run,
        run_dir,
        records,
        metrics,
        str(metrics_path),
        predictions_path,
        baseline_path,
    )
    # The job's input check hashed every checkpoint file against its lineage record: reuse those hashes.
    known = {**recorded_hashes(run_dir / A.CHECKPOINTS_DIR), **recorded_hashes(final)}
    file_flags = [f for d in [*checkpoints, final] for f in check_files(d, None, d.name, known)]
    reps = Path(representations_dir) if representations_dir else None
    if reps is not None:
        file_flags += check_representations(reps)
        run_meta = read_json(run_dir / A.RUN_METADATA)
        file_flags += check_representation_steps(reps, int(run_meta["global_steps"]), representation_spec, run)
    broken = {Path(p) for f in file_flags if f["severity"] == CRITICAL for p in f["files"]}
    loadable = [d for d in checkpoints if not any(d in b.parents or d == b for b in broken)]
    flags += file_flags
    batch = probe_batch(model_spec, task, data_dir, spec.probe_examples)
    flags += check_model_loads(model_spec, task, method, loadable, final, batch, spec.reload_tolerance)
    if weights_path is not None:
        flags += analysed_weight_flags(
            model_spec, task, method, weight_spec, final, seed, run, weights_path, spec.min_relative_update
        )
    flags = apply_severity(flags, spec)
    document = {
        "method": method.name,
        "task": task.name,
        "seed": seed,
        "passed": not any(f["severity"] == CRITICAL for f in flags),
        "critical": sum(f["severity"] == CRITICAL for f in flags),
        "warning": sum(f["severity"] == WARNING for f in flags),
        "flags": flags,
        "checked": {
            "train_log": log_path,
            "log_points": len(records),
            "metrics": str(metrics_path),
            "checkpoints": [str(d) for d in checkpoints],
            "final": str(final),
            "representation_steps": len(representation_steps(reps)) if reps else 0,
            "gates": list(gate_paths),
            "predictions": predictions_path and str(predictions_path),
            "baseline": baseline_path and str(baseline_path),
            "weights": weights_path and str(weights_path),
        },
    }
    write_text(out_txt, format_flags(document))
    write_json(out_json, document)
    log.info(
        "validation %s/%s seed %d: %d critical, %d warning",
        method.name,
        task.name,
        seed,
        document["critical"],
        document["warning"],
    )
    update_tracked_run(run_dir, metrics, document)
    return document


def tracking_summary(metrics: Mapping[str, Any], document: Mapping[str, Any], lineage_id: str) -> dict[str, Any]:
    """The W&B summary of a validated run: its final eval metrics (numbers), the verdict, the flag codes and the
    lineage id of its run.json."""
    summary: dict[str, Any] = {
        f"eval/{k}": v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    summary.update(
        {
            "eval/primary_metric": metrics.get("primary_metric"),
            "validation/passed": document["passed"],
            "validation/critical": document["critical"],
            "validation/warning": document["warning"],
            "validation/flag_codes": sorted({f["code"] for f in document["flags"]}),
            "lineage_id": lineage_id,
        }
    )
    return summary


def run_lineage_id(run_json: Path) -> str:
    """The lineage id of run.json (its record's id), else the sha256 of run.json itself (no record written)."""
    record = read_record(run_json)
    return record["id"] if record else sha256_file(run_json)


def update_tracked_run(run_dir: Path, metrics: Mapping[str, Any], document: Mapping[str, Any]) -> None:
    """Put the validation in the W&B run that trained `run_dir` (when it was tracked): summary, and one alert per
    critical flag. A failed update (online, no network) is logged, not raised: the report on disk is the verdict."""
    run_json = run_dir / A.RUN_METADATA
    if not run_json.is_file() or not tracked_run_id(run_json):
        return
    run = f"{document['method']}/{document['task']}/seed{document['seed']}"
    alerts = [(f"{run}: {f['code']}", f["message"]) for f in document["flags"] if f["severity"] == CRITICAL]
    try:
        update_run(run_json, tracking_summary(metrics, document, run_lineage_id(run_json)), alerts)
    except Exception:  # noqa: BLE001 - the report is written; an unreachable W&B server must not fail the validation
        log.exception("W&B update of %s failed; the validation report has every flag (%s)", run_json, run)


def analysed_weight_flags(
    model_spec: Any,
    task: Any,
    method: Any,
    spec: Any,
    final: Path,
    seed: int,
    run: str,
    weights_path: str | os.PathLike,
    min_update: float = 0.0,
) -> list[dict]:
    """Analyses the run's update (`analyze_weights` below, written to `weights_path`) and checks it.
    Done here, in the validation's process, which has imported torch and transformers already: a job of its
    own would pay those imports and the model loads again for each run."""
    analysis = analyze_weights(model_spec, task, method, spec, final, seed, weights_path)
    return check_weights(analysis, run, str(weights_path), min_update)


# ---------------------------------------------------------------- weight analysis (models loaded here)


def _backbone_linear_modules(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """Every linear map outside the task head, by module name: nn.Linear, and GPT-2's Conv1D (whose weight is
    kept in its (in, out) layout, as PEFT's LoRA delta for it is)."""
    from transformers.pytorch_utils import Conv1D

    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, (torch.nn.Linear, Conv1D)) and not set(name.split(".")) & set(HEAD_PREFIXES)
    }


def _lora_layers(peft_model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """PEFT's LoRA layers by the name of the base module each adapts."""
    return {
        name.removeprefix("base_model.model."): module
        for name, module in peft_model.named_modules()
        if hasattr(module, "lora_A") and "default" in getattr(module, "lora_A", {})
    }


def _weight(module: torch.nn.Module) -> np.ndarray:
    return module.weight.detach().float().cpu().numpy()


def _tuned_weight(module: torch.nn.Module, base_weight: np.ndarray, lora: bool) -> np.ndarray:
    """The fine-tuned matrix: the module's own weight, or the base weight plus the exact LoRA update scale * B @ A."""
    if lora:
        return base_weight + module.get_delta_weight("default").detach().float().cpu().numpy()
    return _weight(module)


def analyze_weights(
    model_spec: ModelSpec,
    task: TaskSpec,
    method: MethodSpec,
    spec: WeightSpec,
    final_dir: str | os.PathLike,
    seed: int,
    out_path: str | os.PathLike,
) -> dict[str, Any]:
    """Per adapted matrix of a run: update norm, effective rank, intruders (and LoRA rank use). One matrix at
    a time: beside the two models, memory holds one matrix pair, never a copy of every weight; a log line every
    PROGRESS_EVERY_S seconds (a 7B model's analysis takes hours on a CPU)."""
    task_type = get_task_type(task.type)
    placement = placement_for(model_spec, copies=2)  # the base and the final model side by side
    base = _backbone_linear_modules(task_type.load_model(model_spec, task, placement=placement))
    tuned_model = task_type.load_tuned_model(model_spec, task, method, final_dir, placement=placement)
    tuned = _lora_layers(tuned_model) if method.is_lora else _backbone_linear_modules(tuned_model)
    rank = method.lora.r if method.is_lora else None
    names = sorted(n for n in tuned if n in base)
    # the SVDs on the job's GPU when it has one; the base's factorisations shared by every run of the study
    device = placement.main_device if placement.kind != "cpu" else None
    cache = FactorCache(_base_identity(model_spec, task))
    matrices, last_log = [], time.monotonic()
    for done, name in enumerate(names, 1):
        before = _weight(base[name])
        vectors = functools.partial(cache.left_vectors, name, functools.partial(left_singular_vectors, before, device))
        matrices.append(
            matrix_report(name, before, _tuned_weight(tuned[name], before, method.is_lora), spec, rank, vectors, device)
        )
        if time.monotonic() - last_log > PROGRESS_EVERY_S:
            log.info("weight analysis: %d of %d matrices", done, len(names))
            last_log = time.monotonic()
    if not matrices:
        raise ValueError(f"{final_dir}: no adapted weight matrix matches the base model's linear layers")
    result = {
        "method": method.name,
        "method_type": method.type,
        "task": task.name,
        "seed": seed,
        "model": model_spec.name_or_path,
        "intruder_threshold": spec.intruder_threshold,
        "intruder_top_k": spec.intruder_top_k,
        "placement": placement.to_dict(),
        "matrices": matrices,
    }
    write_json(out_path, result)
    log.info(
        "%s/%s seed %d: %d matrices analysed on %s (base factorisations: %d cached, %d computed)",
        method.name,
        task.name,
        seed,
        len(matrices),
        device or "cpu",
        cache.hits,
        cache.misses,
    )
    return result


def _base_identity(model_spec: ModelSpec, task: TaskSpec) -> list[Any]:
    """What the base's matrices depend on: the model's name, revision and dtype, the task's head (labels; the
    backbone's matrices never depend on it, but a head-less task type loads another class), and for a model on
    disk its weight files (name, size, modification time)."""
    from tunetrace.models.names import is_local, resolve_model_path
    from tunetrace.tasks.partial import files_fingerprint

    files = files_fingerprint(resolve_model_path(model_spec.name_or_path)) if is_local(model_spec.name_or_path) else []
    return [
        model_spec.name_or_path,
        model_spec.revision,
        model_spec.dtype,
        task.type,
        [f for f in files if f[0].endswith(".safetensors")],
    ]
