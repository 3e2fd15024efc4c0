"""What the label-predicting task types share (sequence and generative classification): their rows,
their scores from logits, their predictions table, their report and their merge quantities."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from tunetrace import artifacts as A
from tunetrace import registry
from tunetrace.config import EvalSpec, TaskSpec
from tunetrace.data.checks import DataError, cell_text, check_columns, check_unique_ids, row_number
from tunetrace.evaluation.metrics import (
    bootstrap_intervals,
    classification_metrics,
    cross_entropy,
    group_error_rates,
    softmax,
)
from tunetrace.tasks.base import MergeQuantity

CI_KEYS = ("accuracy", "f1", "macro_f1", "precision", "recall")


def class_weight_vector(
    setting: str | tuple[float, ...] | None, train_labels: np.ndarray, task: TaskSpec
) -> list[float] | None:
    """The training loss's weight per label (tasks.<task>.class_weights): None (unweighted), `balanced`
    (n / (k x n_label), so every label weighs n / k in total, as scikit-learn counts it) or the given list."""
    if setting is None:
        return None
    k = len(task.labels)
    if setting != "balanced":
        return [float(w) for w in setting]
    counts = np.bincount(np.asarray(train_labels, dtype=int), minlength=k)
    if (counts == 0).any():
        missing = [task.label_names[i] for i in np.flatnonzero(counts == 0)]
        raise DataError(
            f"tasks.{task.name}.class_weights: balanced needs every label in the training split; "
            f"{missing} have no training row; give explicit weights or add rows"
        )
    return [float(w) for w in counts.sum() / (k * counts)]


def standardise_labelled(frame: pd.DataFrame, task: TaskSpec, origin: str, id_prefix: str) -> pd.DataFrame:
    """Text (or a sentence pair), a label from the task's label set, optional group and id; every row checked."""
    wanted = list(task.text_fields) + [task.label_field]
    wanted += [c for c in (task.group_field, task.id_field) if c]
    check_columns(frame, wanted, origin)
    names = task.label_names
    raw_labels = frame[task.label_field].map(lambda v: "" if v is None else str(v).strip())
    bad = ~raw_labels.isin(names)
    if bad.any():
        pos = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{origin}: row {row_number(pos)}, column '{task.label_field}': label "
            f"{raw_labels.iloc[pos]!r} is not in the label set {names} ({int(bad.sum())} such rows); "
            "fix the data or the task's `labels`"
        )
    out = pd.DataFrame()
    out[A.COL_ID] = (
        frame[task.id_field].astype(str) if task.id_field else [f"{id_prefix}-{i:06d}" for i in range(len(frame))]
    )
    for column, source in zip((A.COL_TEXT, A.COL_TEXT_PAIR), task.text_fields, strict=False):
        values = frame[source].map(cell_text)
        empty = values.str.strip() == ""
        if empty.any():
            pos = int(np.flatnonzero(empty.to_numpy())[0])
            raise DataError(f"{origin}: row {row_number(pos)}, column '{source}': empty text")
        out[column] = values.to_numpy()
    out[A.COL_LABEL] = raw_labels.map(names.index).astype("int64").to_numpy()
    out[A.COL_LABEL_NAME] = raw_labels.to_numpy()
    if task.group_field:
        out[A.COL_GROUP] = frame[task.group_field].map(cell_text).to_numpy()
    check_unique_ids(out[A.COL_ID].reset_index(drop=True), origin, task.id_field)
    return out


def score_predictions(
    logits: np.ndarray,
    frame: pd.DataFrame,
    task: TaskSpec,
    spec: EvalSpec,
    seed: int = 0,
    y_pred: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every metric of a set of logits (or given predictions) against the split's labels, with bootstrap intervals."""
    y_true = frame[A.COL_LABEL].to_numpy()
    y_pred = logits.argmax(axis=1) if y_pred is None else y_pred
    k, positive = len(task.labels), task.positive_index
    result: dict[str, Any] = classification_metrics(y_true, y_pred, k, positive)
    result["loss"] = cross_entropy(logits, y_true)
    result["primary_metric"] = task.primary_metric
    result["primary"] = result[task.primary_metric]
    result["ci"] = bootstrap_intervals(
        y_true,
        y_pred,
        partial(classification_metrics, num_classes=k, positive=positive),
        CI_KEYS,
        spec.bootstrap_samples,
        spec.confidence,
        seed,
    )
    result["confidence"] = spec.confidence
    if A.COL_GROUP in frame:
        result["groups"] = group_error_rates(
            y_true, y_pred, frame[A.COL_GROUP].to_numpy(), positive, spec.min_group_class_examples
        )
    return result


def predictions_frame(
    logits: np.ndarray,
    frame: pd.DataFrame,
    task: TaskSpec,
    y_pred: np.ndarray | None = None,
    unparseable: int | None = None,
) -> pd.DataFrame:
    """One row per example: id, label, prediction, per-class probabilities, group."""
    probs = softmax(logits)
    out = pd.DataFrame({A.COL_ID: frame[A.COL_ID], A.COL_LABEL: frame[A.COL_LABEL]})
    out["prediction"] = logits.argmax(axis=1) if y_pred is None else y_pred
    out["prediction_name"] = [task.label_names[i] if i != unparseable else "<unparseable>" for i in out["prediction"]]
    out["correct"] = out["prediction"] == out[A.COL_LABEL]
    for i, name in enumerate(task.label_names):
        out[f"prob_{name}"] = probs[:, i]
    if A.COL_GROUP in frame:
        out[A.COL_GROUP] = frame[A.COL_GROUP].to_numpy()
    return out


def format_report(metrics: dict[str, Any]) -> str:
    """A short plain-text summary of an evaluation (the generic step adds the title)."""
    lines = [f"examples: {metrics['n']}"]
    for key in ("accuracy", "precision", "recall", "f1", "macro_f1", "loss"):
        ci = metrics.get("ci", {}).get(key)
        interval = f"  [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""
        lines.append(f"{key:>10}: {metrics[key]:.4f}{interval}")
    groups = metrics.get("groups")
    if groups:
        lines += ["", *group_report(groups)]
    return "\n".join(lines) + "\n"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def group_report(groups: dict[str, Any]) -> list[str]:
    """Per-group FPR/FNR ("n/a" where undefined or degenerate, with why) and the largest gaps, as text lines."""
    lines = [f"{'group':<16}{'n':>6}{'pos':>6}{'neg':>6}{'FPR':>9}{'FNR':>9}{'acc':>9}"]
    reasons: dict[str, list[str]] = {}
    for name, row in groups["groups"].items():
        lines.append(
            f"{name:<16}{row['n']:>6}{row['positives']:>6}{row['negatives']:>6}{_rate(row['fpr']):>9}"
            f"{_rate(row['fnr']):>9}{row['accuracy']:>9.3f}"
        )
        for rate in ("fpr", "fnr"):
            if row.get(f"{rate}_reason"):
                reasons.setdefault(row[f"{rate}_reason"], []).append(f"{name} {rate.upper()}")
    every = 2 * len(groups["groups"])
    lines += [
        f"n/a ({'every group' if len(where) == every else ', '.join(where)}): {reason}"
        for reason, where in reasons.items()
    ]
    for rate in ("fpr", "fnr"):
        gap = groups[f"{rate}_gap"]
        lines.append(
            f"largest {rate.upper()} gap: "
            + (
                f"n/a ({gap['reason']})"
                if gap["gap"] is None
                else f"{gap['gap']:.3f} ({gap['max_group']} vs {gap['min_group']})"
            )
        )
    return lines


FIX_COLLAPSE = (
    "usually fixed by more optimiser steps (methods.<m>.epochs or max_steps) or a larger learning rate "
    "(methods.<m>.learning_rate)"
)


def fix_collapse(task: TaskSpec) -> str:
    """The collapse advice; for a task type that trains a loss over the labels, the class-weights key by name."""
    if not registry.entry(task.type).label_head:  # the config refuses class_weights for the other types
        return FIX_COLLAPSE
    return f"{FIX_COLLAPSE}, or tasks.{task.name}.class_weights: balanced when the labels are imbalanced"


def entropy_bits(values: np.ndarray) -> float:
    """Shannon entropy (bits) of the empirical distribution of `values`."""
    _, counts = np.unique(values, return_counts=True)
    shares = counts / counts.sum()
    return float(-(shares * np.log2(shares)).sum())


def _counts_text(values: np.ndarray, names: list[str]) -> str:
    kinds, counts = np.unique(values, return_counts=True)
    return ", ".join(
        f"{c} {names[k] if 0 <= k < len(names) else '<unparseable>'}"
        for k, c in zip(kinds.tolist(), counts.tolist(), strict=True)
    )


def label_prediction_flags(predictions: pd.DataFrame, task: TaskSpec, spec: Any) -> list[dict[str, str]]:
    """Collapse signs of a label-predicting model: one class for every example, predictions far less varied
    than the labels (entropy ratio below `spec.min_prediction_entropy_ratio`), the positive class of a
    binary task never predicted. An unparseable output (generative) counts as an outcome of its own."""
    y_true, y_pred = predictions[A.COL_LABEL].to_numpy(), predictions["prediction"].to_numpy()
    names, flags, fix = task.label_names, [], fix_collapse(task)
    label_h, pred_h = entropy_bits(y_true), entropy_bits(y_pred)
    seen = f"(labels: {_counts_text(y_true, names)}; predictions: {_counts_text(y_pred, names)})"
    if label_h > 0 and len(np.unique(y_pred)) == 1:
        flags.append(
            {
                "code": "single_class_predictions",
                "message": f"predicts {_counts_text(y_pred, names)} - one "
                f"outcome for all {len(y_pred)} eval examples {seen}: the model collapsed; {fix}",
            }
        )
    elif label_h > 0 and pred_h / label_h < spec.min_prediction_entropy_ratio:
        flags.append(
            {
                "code": "prediction_entropy_low",
                "message": f"prediction entropy {pred_h:.3f} bits is "
                f"{pred_h / label_h:.2f} of the label entropy {label_h:.3f} bits (< validation."
                f"min_prediction_entropy_ratio {spec.min_prediction_entropy_ratio:g}) {seen}: nearly "
                f"one class; {fix}",
            }
        )
    positive = task.positive_index
    if len(names) == 2 and (y_true == positive).any() and not (y_pred == positive).any():
        flags.append(
            {
                "code": "positive_never_predicted",
                "message": f"never predicts the positive class "
                f"'{names[positive]}' ({int((y_true == positive).sum())} positives in the eval split), so its "
                f"recall and F1 are 0 by construction; {fix} (check tasks.{task.name}.positive_label too)",
            }
        )
    return flags


def logit_quantities(
    reference: np.ndarray,
    candidate: np.ndarray,
    labels: np.ndarray,
    tolerance: float,
    diff_name: str = "max_abs_logit_diff",
) -> tuple[list[MergeQuantity], dict[str, float]]:
    """Merge quantities of two logit arrays over the labels: the checked max |diff|, and the reported
    loss difference and label agreement; details hold each model's loss."""
    loss_a, loss_b = cross_entropy(reference, labels), cross_entropy(candidate, labels)
    quantities = [
        MergeQuantity(diff_name, float(np.max(np.abs(reference - candidate))) if reference.size else 0.0, tolerance),
        MergeQuantity("loss_abs_diff", abs(loss_a - loss_b)),
        MergeQuantity(
            "label_agreement",
            float(np.mean(reference.argmax(1) == candidate.argmax(1))) if len(labels) else 1.0,
            bound="min",
        ),
    ]
    details = {
        "mean_abs_logit_diff": float(np.mean(np.abs(reference - candidate))) if reference.size else 0.0,
        "loss_adapter": loss_a,
        "loss_merged": loss_b,
    }
    return quantities, details
