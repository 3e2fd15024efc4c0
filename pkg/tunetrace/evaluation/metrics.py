"""Classification metrics as pure functions on integer label arrays.

Conventions: `positive` is the class index treated as positive for binary precision, recall,
F1, FPR and FNR. Undefined ratios (0/0) of the overall scores are returned as 0.0 and never
raise; per-group rates (`group_error_rates`) are None with a reason instead, because a 0.0 there
would enter the between-group gap as if it were measured.
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


def classification_metrics(
    y_true: Sequence[int], y_pred: Sequence[int], num_classes: int, positive: int
) -> dict[str, float]:
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


def _split_degenerate(y_pred: np.ndarray, positive: int) -> str | None:
    """Why no group rate means anything when the whole split's predictions are constant for `positive`."""
    predicted = int(np.sum(y_pred == positive))
    if predicted == 0:
        return "no example of the split is predicted positive (a constant predictor: FPR 0 and FNR 1 in every group)"
    if predicted == len(y_pred):
        return "every example of the split is predicted positive (a constant predictor: FPR 1 and FNR 0 in every group)"
    return None


def _group_rate(errors: int, count: int, kind: str, min_count: int, degenerate: str | None) -> tuple:
    """(rate, reason): the rate, or None with why it is undefined or too noisy to compare."""
    if degenerate:
        return None, degenerate
    if count == 0:
        return None, f"undefined: the group has no {kind}"
    if count < min_count:
        return None, f"only {count} {kind} (< evaluation.min_group_class_examples {min_count})"
    return errors / count, None


def _largest_gap(per_group: Mapping[str, Mapping], key: str) -> dict:
    """The largest difference of a rate between groups, over the groups where it is defined."""
    values = {g: v[key] for g, v in per_group.items() if v[key] is not None}
    if len(values) < 2:
        return {
            "gap": None,
            "max_group": None,
            "min_group": None,
            "groups_compared": len(values),
            "reason": f"fewer than two groups with a defined {key.upper()} ({len(values)} of {len(per_group)})",
        }
    hi = max(values, key=values.get)
    lo = min((g for g in values if g != hi), key=values.get)  # two different groups, also when all rates tie
    return {
        "gap": values[hi] - values[lo],
        "max_group": hi,
        "min_group": lo,
        "groups_compared": len(values),
        "reason": None,
    }


def group_error_rates(
    y_true: Sequence[int], y_pred: Sequence[int], groups: Sequence[str], positive: int, min_class_examples: int
) -> dict:
    """Per-group FPR, FNR and counts, and the largest FPR and FNR gap between groups.

    A rate is None, with a reason beside it (`fpr_reason`, `fnr_reason`), when it is undefined (no
    negatives or positives in the group), rests on fewer than `min_class_examples` of its class, or
    when the whole split is predicted as one side of `positive` (every group then gets FPR 0 and
    FNR 1, or the reverse, and a gap of 0.0 would read as "perfectly fair"). Gaps are taken over
    the defined rates only, and are None with a reason when fewer than two groups have one."""
    y_true, y_pred, groups = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
    degenerate = _split_degenerate(y_pred, positive)
    per_group = {}
    for group in sorted(set(groups.tolist())):
        mask = groups == group
        c = confusion(y_true[mask], y_pred[mask], positive)
        fpr, fpr_reason = _group_rate(c["fp"], c["fp"] + c["tn"], "negatives", min_class_examples, degenerate)
        fnr, fnr_reason = _group_rate(c["fn"], c["fn"] + c["tp"], "positives", min_class_examples, degenerate)
        per_group[str(group)] = {
            "n": int(mask.sum()),
            "positives": c["tp"] + c["fn"],
            "negatives": c["fp"] + c["tn"],
            "fpr": fpr,
            "fnr": fnr,
            "fpr_reason": fpr_reason,
            "fnr_reason": fnr_reason,
            "accuracy": float(np.mean(y_true[mask] == y_pred[mask])),
        }
    return {
        "groups": per_group,
        "fpr_gap": _largest_gap(per_group, "fpr"),
        "fnr_gap": _largest_gap(per_group, "fnr"),
        "degenerate": degenerate,
        "min_class_examples": min_class_examples,
    }


def bootstrap_intervals(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    metric_fn: Callable[[np.ndarray, np.ndarray], Mapping[str, float]],
    keys: Sequence[str],
    samples: int,
    confidence: float,
    seed: int = 0,
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
