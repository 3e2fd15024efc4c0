"""Classification metrics as pure functions on integer label arrays.

Conventions: `positive` is the class index treated as positive for binary precision, recall,
F1, FPR and FNR. Undefined ratios (0/0) are returned as 0.0 and never raise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def confusion(y_true: np.ndarray, y_pred: np.ndarray, positive: int) -> dict[str, int]:
    """True/false positives/negatives with `positive` as the positive class."""
    t = np.asarray(y_true) == positive
    p = np.asarray(y_pred) == positive
    return {"tp": int(np.sum(t & p)), "fp": int(np.sum(~t & p)), "fn": int(np.sum(t & ~p)), "tn": int(np.sum(~t & ~p))}


def binary_scores(counts: Mapping[str, int]) -> dict[str, float]:
    """Precision, recall, F1, FPR, FNR from confusion counts."""
    tp, fp, fn, tn = counts["tp"], counts["fp"], counts["fn"], counts["tn"]
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "fpr": _ratio(fp, fp + tn),
        "fnr": _ratio(fn, fn + tp),
    }


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over the classes present in y_true or y_pred."""
    present = sorted(set(np.asarray(y_true).tolist()) | set(np.asarray(y_pred).tolist()))
    present = [c for c in present if 0 <= c < num_classes]
    if not present:
        return 0.0
    return float(np.mean([binary_scores(confusion(y_true, y_pred, c))["f1"] for c in present]))


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int],
                           num_classes: int, positive: int) -> dict[str, float]:
    """Accuracy, binary precision/recall/F1 for `positive`, macro F1."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has {y_pred.shape}")
    scores = binary_scores(confusion(y_true, y_pred, positive))
    return {
        "accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else 0.0,
        "precision": scores["precision"],
        "recall": scores["recall"],
        "f1": scores["f1"],
        "macro_f1": macro_f1(y_true, y_pred, num_classes),
        "n": int(len(y_true)),
    }


def group_error_rates(y_true: Sequence[int], y_pred: Sequence[int], groups: Sequence[str], positive: int) -> dict:
    """Per-group FPR, FNR and counts, and the largest FPR and FNR gap between groups."""
    y_true, y_pred, groups = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
    per_group = {}
    for group in sorted(set(groups.tolist())):
        mask = groups == group
        counts = confusion(y_true[mask], y_pred[mask], positive)
        scores = binary_scores(counts)
        per_group[str(group)] = {
            "n": int(mask.sum()), "positives": counts["tp"] + counts["fn"], "negatives": counts["fp"] + counts["tn"],
            "fpr": scores["fpr"], "fnr": scores["fnr"],
            "accuracy": float(np.mean(y_true[mask] == y_pred[mask])),
        }

    def gap(key: str) -> dict:
        values = {g: v[key] for g, v in per_group.items()}
        if len(values) < 2:
            return {"gap": 0.0, "max_group": None, "min_group": None}
        hi, lo = max(values, key=values.get), min(values, key=values.get)
        return {"gap": values[hi] - values[lo], "max_group": hi, "min_group": lo}

    return {"groups": per_group, "fpr_gap": gap("fpr"), "fnr_gap": gap("fnr")}


def bootstrap_intervals(
    y_true: Sequence[int], y_pred: Sequence[int], metric_fn: Callable[[np.ndarray, np.ndarray], Mapping[str, float]],
    keys: Sequence[str], samples: int, confidence: float, seed: int = 0,
) -> dict[str, list[float]]:
    """Percentile bootstrap intervals of each metric in `keys` (resampling examples)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if samples <= 0 or len(y_true) == 0:
        return {}
    rng = np.random.default_rng(seed)
    draws = {key: np.empty(samples) for key in keys}
    for i in range(samples):
        idx = rng.integers(0, len(y_true), len(y_true))
        values = metric_fn(y_true[idx], y_pred[idx])
        for key in keys:
            draws[key][i] = values[key]
    alpha = (1.0 - confidence) / 2.0
    return {key: [float(np.quantile(v, alpha)), float(np.quantile(v, 1.0 - alpha))] for key, v in draws.items()}


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of integer labels under softmax(logits), computed stably."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-np.mean(log_probs[np.arange(len(labels)), np.asarray(labels)]))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def relative_improvement(candidate: float, baseline: float, higher_is_better: bool) -> float:
    """Improvement over the baseline as a share of it, positive when the candidate is better."""
    gain = (candidate - baseline) * (1.0 if higher_is_better else -1.0)
    if baseline:
        return gain / abs(baseline)
    return 0.0 if gain == 0 else float("inf") if gain > 0 else float("-inf")
