"""Metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tunetrace.evaluation.metrics import (
    bootstrap_intervals,
    classification_metrics,
    confusion,
    cross_entropy,
    group_error_rates,
    macro_f1,
    relative_improvement,
)

# y_true / y_pred with positive = 1: tp=3, fp=1, fn=2, tn=4
Y_TRUE = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
Y_PRED = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]


def test_confusion_counts() -> None:
    """Counts match a hand tally."""
    assert confusion(np.array(Y_TRUE), np.array(Y_PRED), 1) == {"tp": 3, "fp": 1, "fn": 2, "tn": 4}


def test_binary_metrics_by_hand() -> None:
    """Accuracy 7/10, precision 3/4, recall 3/5, F1 2PR/(P+R)."""
    m = classification_metrics(Y_TRUE, Y_PRED, 2, positive=1)
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["precision"] == pytest.approx(0.75)
    assert m["recall"] == pytest.approx(0.6)
    assert m["f1"] == pytest.approx(2 * 0.75 * 0.6 / 1.35)


def test_macro_f1_by_hand() -> None:
    """Macro F1 averages F1 of class 1 (2/3) and class 0 (8/11)."""
    f1_pos = 2 * 0.75 * 0.6 / 1.35
    f1_neg = 2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5)
    assert macro_f1(np.array(Y_TRUE), np.array(Y_PRED), 2) == pytest.approx((f1_pos + f1_neg) / 2)


def test_group_rates_and_largest_gap() -> None:
    """Per-group FPR/FNR and the largest gap with the groups that span it."""
    groups = ["a"] * 5 + ["b"] * 5
    y_true = [1, 1, 0, 0, 0, 1, 1, 0, 0, 0]
    y_pred = [1, 0, 1, 0, 0, 1, 1, 0, 0, 0]
    result = group_error_rates(y_true, y_pred, groups, positive=1, min_class_examples=1)
    assert result["groups"]["a"]["fnr"] == pytest.approx(0.5)
    assert result["groups"]["a"]["fpr"] == pytest.approx(1 / 3)
    assert result["groups"]["b"]["fpr"] == 0.0 and result["groups"]["b"]["fnr"] == 0.0
    assert result["fpr_gap"] == {
        "gap": pytest.approx(1 / 3),
        "max_group": "a",
        "min_group": "b",
        "groups_compared": 2,
        "reason": None,
    }


def test_group_without_negatives_has_null_fpr_with_reason() -> None:
    """A group with no negatives gets FPR None and says why, never 0.0; its FNR is still measured."""
    result = group_error_rates([1, 1, 0, 1], [1, 0, 1, 1], ["a", "a", "b", "b"], positive=1, min_class_examples=1)
    assert result["groups"]["a"]["fpr"] is None and "no negatives" in result["groups"]["a"]["fpr_reason"]
    assert result["groups"]["a"]["fnr"] == pytest.approx(0.5) and result["groups"]["a"]["fnr_reason"] is None


def test_group_with_too_few_examples_of_a_class_has_null_rate() -> None:
    """Fewer negatives than min_class_examples: FPR None, the reason naming the count and the config key."""
    result = group_error_rates([0, 0, 1, 1, 1], [0, 1, 1, 1, 0], ["a"] * 5, positive=1, min_class_examples=3)
    row = result["groups"]["a"]
    assert row["fpr"] is None and row["fpr_reason"] == "only 2 negatives (< evaluation.min_group_class_examples 3)"
    assert row["fnr"] == pytest.approx(1 / 3)


def test_split_without_positive_predictions_has_no_rates_and_no_gap() -> None:
    """A model that never predicts positive gets null rates everywhere and null gaps, not FPR 0 / FNR 1 and a
    'perfectly fair' gap of 0.0."""
    y_true = [0, 1] * 8
    groups = ["a"] * 8 + ["b"] * 8
    result = group_error_rates(y_true, [0] * 16, groups, positive=1, min_class_examples=1)
    assert all(r["fpr"] is None and r["fnr"] is None for r in result["groups"].values())
    assert "no example of the split is predicted positive" in result["degenerate"]
    for key in ("fpr_gap", "fnr_gap"):
        assert result[key]["gap"] is None and "fewer than two groups" in result[key]["reason"]


def test_equal_rates_give_a_zero_gap_between_two_groups() -> None:
    """Every group at FPR 0.5: the gap is 0.0 and names two different groups, not one group against itself."""
    result = group_error_rates([0, 0, 1] * 2, [1, 0, 1] * 2, ["a"] * 3 + ["b"] * 3, positive=1, min_class_examples=1)
    assert result["fpr_gap"]["gap"] == 0.0 and result["fpr_gap"]["max_group"] != result["fpr_gap"]["min_group"]


def test_gap_is_taken_over_defined_rates_only() -> None:
    """A group whose FPR is undefined does not enter the gap; the gap spans the two measured groups."""
    y_true = [0, 0, 1, 1] + [0, 0, 1, 1] + [1, 1, 1, 1]
    y_pred = [1, 0, 1, 1] + [0, 0, 1, 0] + [1, 1, 0, 1]
    groups = ["a"] * 4 + ["b"] * 4 + ["c"] * 4
    result = group_error_rates(y_true, y_pred, groups, positive=1, min_class_examples=1)
    assert result["groups"]["c"]["fpr"] is None
    assert result["fpr_gap"] == {
        "gap": pytest.approx(0.5),
        "max_group": "a",
        "min_group": "b",
        "groups_compared": 2,
        "reason": None,
    }


def test_zero_denominators_do_not_raise() -> None:
    """No positive predictions gives precision 0, not an error."""
    m = classification_metrics([0, 0, 1], [0, 0, 0], 2, positive=1)
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0


def test_bootstrap_interval_contains_point_estimate() -> None:
    """The percentile interval brackets the observed accuracy and is reproducible."""
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 300)
    y_pred = np.where(rng.random(300) < 0.8, y_true, 1 - y_true)
    fn = lambda t, p: classification_metrics(t, p, 2, 1)  # noqa: E731
    ci = bootstrap_intervals(y_true, y_pred, fn, ["accuracy"], 300, 0.95, seed=1)
    acc = float(np.mean(y_true == y_pred))
    assert ci["accuracy"][0] < acc < ci["accuracy"][1]
    assert ci == bootstrap_intervals(y_true, y_pred, fn, ["accuracy"], 300, 0.95, seed=1)


def test_cross_entropy_by_hand() -> None:
    """Cross-entropy of uniform logits over 2 classes is ln 2."""
    assert cross_entropy(np.zeros((4, 2)), np.array([0, 1, 0, 1])) == pytest.approx(math.log(2))


def test_relative_improvement_is_direction_aware() -> None:
    """Higher accuracy and lower loss both count as improvement."""
    assert relative_improvement(0.84, 0.80, True) == pytest.approx(0.05)
    assert relative_improvement(0.9, 1.0, False) == pytest.approx(0.1)
    assert relative_improvement(0.0, 0.0, True) == 0.0
