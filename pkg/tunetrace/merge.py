"""Merge a LoRA adapter into the base weights, and prove the merged model equals the adapter model."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import artifacts as A
from .config import EvalSpec, ModelSpec, TaskSpec
from .data import load_prepared
from .fileio import atomic_dir, write_json
from .metrics import cross_entropy
from .models import load_adapter_model, load_classifier, load_tokenizer, parameter_counts
from .tasks import encode_classification, predict_logits

log = logging.getLogger(__name__)


class MergeCheckError(RuntimeError):
    """The merged model does not reproduce the adapter model within tolerance."""


def merge_adapter(model_spec: ModelSpec, task: TaskSpec, adapter_dir: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Fold the adapter into the base weights; save a standalone model (loadable without PEFT)."""
    from .tasks import task_handler

    if (handler := task_handler(task.type)) is not None:
        return handler.merge_adapter(model_spec, task, adapter_dir, out_dir)
    model = load_adapter_model(model_spec, task.label_names, str(adapter_dir))
    return save_merged(model.merge_and_unload(), load_tokenizer(model_spec, str(adapter_dir)), model_spec,
                       adapter_dir, out_dir)


def save_merged(merged: Any, tokenizer: Any, model_spec: ModelSpec, adapter_dir: str | os.PathLike,
                out_dir: str | os.PathLike) -> dict[str, Any]:
    """Write a merged model, its tokenizer and merge metadata as one atomic directory (every task type)."""
    info = {"base_model": model_spec.name_or_path, "adapter": str(adapter_dir), "parameters": parameter_counts(merged)}
    with atomic_dir(out_dir) as tmp:
        merged.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        write_json(Path(tmp) / A.MERGE_METADATA, info)
    log.info("merged %s into %s", adapter_dir, out_dir)
    return info


def compare_logits(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Max |difference|, loss difference and label agreement of two logit arrays."""
    return {
        "max_abs_logit_diff": float(np.max(np.abs(reference - candidate))) if reference.size else 0.0,
        "mean_abs_logit_diff": float(np.mean(np.abs(reference - candidate))) if reference.size else 0.0,
        "loss_adapter": cross_entropy(reference, labels),
        "loss_merged": cross_entropy(candidate, labels),
        "loss_abs_diff": abs(cross_entropy(reference, labels) - cross_entropy(candidate, labels)),
        "label_agreement": float(np.mean(reference.argmax(1) == candidate.argmax(1))) if len(labels) else 1.0,
    }


def verify_merge(model_spec: ModelSpec, task: TaskSpec, spec: EvalSpec, data_dir: str | os.PathLike,
                 adapter_dir: str | os.PathLike, merged_dir: str | os.PathLike, out_path: str | os.PathLike,
                 identity: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run adapter and merged model on the eval split; pass when max |logit diff| <= tolerance.

    `identity` (method, task, seed) is stored in the result so the file describes itself.
    """
    from .tasks import task_handler

    if (handler := task_handler(task.type)) is not None:
        return handler.verify_merge(model_spec, task, spec, data_dir, adapter_dir, merged_dir, out_path, identity)
    _, evaluation = load_prepared(data_dir)
    tokenizer = load_tokenizer(model_spec, str(merged_dir))
    dataset, _ = encode_classification(evaluation, tokenizer, task.max_length)
    adapter_logits = predict_logits(load_adapter_model(model_spec, task.label_names, str(adapter_dir)),
                                    dataset, tokenizer, spec.batch_size).numpy()
    merged_logits = predict_logits(load_classifier(model_spec, task.label_names, path=str(merged_dir)),
                                   dataset, tokenizer, spec.batch_size).numpy()
    result = compare_logits(adapter_logits, merged_logits, evaluation[A.COL_LABEL].to_numpy())
    result.update({**(identity or {}), "tolerance": spec.merge_tolerance, "examples": len(evaluation),
                   "passed": result["max_abs_logit_diff"] <= spec.merge_tolerance,
                   "on_failure": spec.merge_failure, "adapter": str(adapter_dir), "merged": str(merged_dir)})
    write_json(out_path, result)
    log.info("merge check %s: max |logit diff| %.3g (tolerance %.3g)", "passed" if result["passed"] else "FAILED",
             result["max_abs_logit_diff"], spec.merge_tolerance)
    if not result["passed"] and spec.merge_failure == "error":
        raise MergeCheckError(
            f"merge check failed: max |logit diff| {result['max_abs_logit_diff']:.3g} > tolerance "
            f"{spec.merge_tolerance:.3g} (details in {out_path}); set evaluation.merge_failure: warn to continue"
        )
    return result
