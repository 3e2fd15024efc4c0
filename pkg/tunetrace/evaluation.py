"""Evaluate a model on a prepared eval split: metrics, group error rates, intervals, predictions."""

from __future__ import annotations

import logging
import os
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import artifacts as A
from .config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from .data import load_prepared
from .fileio import write_json, write_text
from .metrics import (bootstrap_intervals, classification_metrics, cross_entropy, group_error_rates, softmax)
from .models import load_adapter_model, load_classifier, load_tokenizer
from .tasks import encode_classification, predict_logits

log = logging.getLogger(__name__)
CI_KEYS = ("accuracy", "f1", "macro_f1", "precision", "recall")


def load_trained_model(model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, run_dir: str | os.PathLike) -> torch.nn.Module:
    """The final model of a run: a full checkpoint, or the base with the LoRA adapter attached."""
    final = str(Path(run_dir) / A.FINAL_DIR)
    if method.is_lora:
        return load_adapter_model(model_spec, task.label_names, final)
    return load_classifier(model_spec, task.label_names, path=final)


def score_predictions(logits: np.ndarray, frame: pd.DataFrame, task: TaskSpec, spec: EvalSpec, seed: int = 0) -> dict[str, Any]:
    """Every metric of a set of logits against the split's labels."""
    y_true = frame[A.COL_LABEL].to_numpy()
    y_pred = logits.argmax(axis=1)
    k, positive = len(task.labels), task.positive_index
    result: dict[str, Any] = classification_metrics(y_true, y_pred, k, positive)
    result["loss"] = cross_entropy(logits, y_true)
    result["primary_metric"] = task.primary_metric
    result["primary"] = result[task.primary_metric]
    result["ci"] = bootstrap_intervals(
        y_true, y_pred, partial(classification_metrics, num_classes=k, positive=positive),
        CI_KEYS, spec.bootstrap_samples, spec.confidence, seed,
    )
    result["confidence"] = spec.confidence
    if A.COL_GROUP in frame:
        result["groups"] = group_error_rates(y_true, y_pred, frame[A.COL_GROUP].to_numpy(), positive)
    return result


def predictions_frame(logits: np.ndarray, frame: pd.DataFrame, task: TaskSpec) -> pd.DataFrame:
    """One row per example: id, label, prediction, per-class probabilities, group."""
    probs = softmax(logits)
    out = pd.DataFrame({A.COL_ID: frame[A.COL_ID], A.COL_LABEL: frame[A.COL_LABEL]})
    out["prediction"] = logits.argmax(axis=1)
    out["prediction_name"] = [task.label_names[i] for i in out["prediction"]]
    out["correct"] = out["prediction"] == out[A.COL_LABEL]
    for i, name in enumerate(task.label_names):
        out[f"prob_{name}"] = probs[:, i]
    if A.COL_GROUP in frame:
        out[A.COL_GROUP] = frame[A.COL_GROUP]
    return out


def format_report(title: str, metrics: dict[str, Any]) -> str:
    """A short plain-text summary of an evaluation."""
    lines = [title, "=" * len(title), f"examples: {metrics['n']}"]
    for key in ("accuracy", "precision", "recall", "f1", "macro_f1", "loss"):
        ci = metrics.get("ci", {}).get(key)
        interval = f"  [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""
        lines.append(f"{key:>10}: {metrics[key]:.4f}{interval}")
    groups = metrics.get("groups")
    if groups:
        lines += ["", f"{'group':<16}{'n':>6}{'FPR':>9}{'FNR':>9}{'acc':>9}"]
        for name, row in groups["groups"].items():
            lines.append(f"{name:<16}{row['n']:>6}{row['fpr']:>9.3f}{row['fnr']:>9.3f}{row['accuracy']:>9.3f}")
        lines.append(f"largest FPR gap: {groups['fpr_gap']['gap']:.3f} ({groups['fpr_gap']['max_group']} vs {groups['fpr_gap']['min_group']})")
        lines.append(f"largest FNR gap: {groups['fnr_gap']['gap']:.3f} ({groups['fnr_gap']['max_group']} vs {groups['fnr_gap']['min_group']})")
    return "\n".join(lines) + "\n"


def evaluate_run(model_spec: ModelSpec, task: TaskSpec, method: MethodSpec, spec: EvalSpec, seed: int,
                 data_dir: str | os.PathLike, run_dir: str | os.PathLike, out_dir: str | os.PathLike) -> dict[str, Any]:
    """Evaluate a run's final model on the eval split; write metrics, predictions and a report."""
    from .tasks import task_handler

    if (handler := task_handler(task.type)) is not None:
        return handler.evaluate_run(model_spec, task, method, spec, seed, data_dir, run_dir, out_dir)
    _, eval_frame = load_prepared(data_dir)
    tokenizer = load_tokenizer(model_spec, str(Path(run_dir) / A.FINAL_DIR))
    dataset, truncated = encode_classification(eval_frame, tokenizer, task.max_length)
    model = load_trained_model(model_spec, task, method, run_dir)
    logits = predict_logits(model, dataset, tokenizer, spec.batch_size).numpy()
    metrics = score_predictions(logits, eval_frame, task, spec, seed)
    metrics.update({"method": method.name, "task": task.name, "seed": seed, "truncated_eval_examples": truncated})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    predictions_frame(logits, eval_frame, task).to_parquet(out / A.PREDICTIONS, index=False)
    write_text(out / A.EVAL_REPORT, format_report(f"{method.name} / {task.name} / seed {seed}", metrics))
    write_json(out / A.METRICS, metrics)
    log.info("%s/%s seed %d: %s = %.4f", method.name, task.name, seed, task.primary_metric, metrics["primary"])
    return metrics
