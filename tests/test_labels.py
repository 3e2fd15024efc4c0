"""tasks.labels: collapse signs in hand-made predictions, and the text report with undefined group rates."""

from __future__ import annotations

import pandas as pd
import pytest

from tunetrace import artifacts as A
from tunetrace.config import TaskSpec, ValidationSpec
from tunetrace.evaluation.metrics import group_error_rates
from tunetrace.tasks.dispatch import get_task_type
from tunetrace.tasks.labels import entropy_bits, format_report, label_prediction_flags

TASK = TaskSpec.from_dict("t", {"source": {}, "labels": ["negative", "positive"]})
SPEC = ValidationSpec.from_dict({})


def predictions(labels: list[int], predicted: list[int]) -> pd.DataFrame:
    return pd.DataFrame({A.COL_ID: [f"e{i}" for i in range(len(labels))], A.COL_LABEL: labels,
                         "prediction": predicted})


def codes(flags: list[dict]) -> set[str]:
    return {f["code"] for f in flags}


def test_entropy_of_a_balanced_binary_split_is_one_bit():
    """Two equally frequent values carry one bit; a constant carries none."""
    assert entropy_bits([0, 1, 0, 1]) == pytest.approx(1.0) and entropy_bits([1, 1, 1]) == 0.0


def test_single_class_predictions_are_flagged_with_counts_and_fix():
    """Every example predicted negative: single_class_predictions and positive_never_predicted, with the counts."""
    flags = label_prediction_flags(predictions([0, 1] * 6, [0] * 12), TASK, SPEC)
    assert codes(flags) == {"single_class_predictions", "positive_never_predicted"}
    single = next(f for f in flags if f["code"] == "single_class_predictions")
    assert "12 negative" in single["message"] and "6 positive" in single["message"]
    assert "more optimiser steps" in single["message"]


def test_varied_predictions_raise_nothing():
    """Predictions as varied as the labels (some wrong) raise no collapse flag."""
    assert label_prediction_flags(predictions([0, 1] * 6, [0, 1, 1, 1, 0, 0] * 2), TASK, SPEC) == []


def test_low_prediction_entropy_is_flagged():
    """1 positive prediction in 20 on a balanced split: entropy ratio 0.29 < 0.5."""
    flags = label_prediction_flags(predictions([0, 1] * 10, [0] * 19 + [1]), TASK, SPEC)
    assert codes(flags) == {"prediction_entropy_low"}
    assert "0.29 of the label entropy" in flags[0]["message"]


def test_entropy_ratio_threshold_comes_from_the_spec():
    """The same predictions pass with validation.min_prediction_entropy_ratio 0.2."""
    lenient = ValidationSpec.from_dict({"min_prediction_entropy_ratio": 0.2})
    assert label_prediction_flags(predictions([0, 1] * 10, [0] * 19 + [1]), TASK, lenient) == []


def test_positive_never_predicted_beside_unparseable_outputs():
    """Negative and unparseable (-1) outputs only: the positive class is never predicted, though two outcomes occur."""
    flags = label_prediction_flags(predictions([0, 1] * 6, [0, -1] * 6), TASK, SPEC)
    assert codes(flags) == {"positive_never_predicted"}
    assert "'positive' (6 positives" in flags[0]["message"]


def test_single_label_eval_split_is_not_a_model_problem():
    """Eval labels of one class (entropy 0): no entropy or single-class flag for predicting it."""
    assert label_prediction_flags(predictions([0] * 6, [0] * 6), TASK, SPEC) == []


def test_label_types_flag_through_the_contract_and_others_do_not():
    """sequence_classification flags the collapse via TaskType.prediction_flags; causal_lm has none to give."""
    collapsed = predictions([0, 1] * 6, [0] * 12)
    assert "single_class_predictions" in codes(get_task_type(TASK.type).prediction_flags(collapsed, TASK, SPEC))
    assert get_task_type("causal_lm").prediction_flags(collapsed, TASK, SPEC) == []


def test_report_prints_undefined_rates_as_na_with_reason():
    """The text report shows n/a and why for a constant predictor, never FPR 0.000 / FNR 1.000."""
    groups = group_error_rates([0, 1] * 4, [0] * 8, ["a"] * 4 + ["b"] * 4, positive=1, min_class_examples=1)
    metrics = {"n": 8, "accuracy": 0.5, "precision": 0.0, "recall": 0.0, "f1": 0.0, "macro_f1": 0.33, "loss": 0.7,
               "groups": groups}
    report = format_report(metrics)
    assert "n/a (every group): no example of the split is predicted positive" in report
    assert "largest FPR gap: n/a (fewer than two groups" in report and "1.000" not in report
