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
    return pd.DataFrame({A.COL_ID: [f"e{i}" for i in range(len(labels))], A.COL_LABEL: labels, "prediction": predicted})


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
    metrics = {
        "n": 8,
        "accuracy": 0.5,
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "macro_f1": 0.33,
        "loss": 0.7,
        "groups": groups,
    }
    report = format_report(metrics)
    assert "n/a (every group): no example of the split is predicted positive" in report
    assert "largest FPR gap: n/a (fewer than two groups" in report and "1.000" not in report


def test_collapse_advice_names_the_class_weights_key():
    """A sequence classifier's collapse flag names tasks.<task>.class_weights: balanced; a generative one does not."""
    [found] = label_prediction_flags(predictions([0, 1, 0, 1], [0, 0, 0, 0]), TASK, SPEC)[:1]
    assert "tasks.t.class_weights: balanced" in found["message"]
    generative = TaskSpec.from_dict(
        "g", {"type": "generative_classification", "source": {}, "labels": ["negative", "positive"]}
    )
    assert all(
        "class_weights" not in f["message"]
        for f in label_prediction_flags(predictions([0, 1, 0, 1], [0, 0, 0, 0]), generative, SPEC)
    )


def test_class_weight_vector_known_answers():
    """balanced: n / (k x n_label) (6 rows, 1 positive: 0.6 and 3.0); a list is used as given; None stays None;
    balanced with a label absent from training is refused naming the key."""
    import numpy as np

    from tunetrace.data.checks import DataError
    from tunetrace.tasks.labels import class_weight_vector

    labels = np.array([0, 0, 0, 0, 0, 1])
    assert class_weight_vector("balanced", labels, TASK) == pytest.approx([6 / (2 * 5), 6 / (2 * 1)])
    assert class_weight_vector((1.0, 4.0), labels, TASK) == [1.0, 4.0]
    assert class_weight_vector(None, labels, TASK) is None
    with pytest.raises(DataError, match=r"tasks\.t\.class_weights: balanced.*\['positive'\]"):
        class_weight_vector("balanced", np.zeros(4, dtype=int), TASK)


def test_weighted_loss_on_an_imbalanced_task_matches_a_hand_computation(tmp_path):
    """An imbalanced tiny task (10 negative, 2 positive) with class_weights balanced: the training path's loss on a
    batch differs from the unweighted one and equals sum_i w[y_i] * -log p(y_i) / sum_i w[y_i]."""
    import csv
    import dataclasses

    import numpy as np
    import torch
    from transformers import TrainingArguments

    from conftest import tiny_config, write_sentiment_csv
    from tunetrace.config import MethodSpec, ModelSpec
    from tunetrace.stages.prepare import prepare_task_data

    write_sentiment_csv(tmp_path / "eval.csv", 8, seed=4)
    write_sentiment_csv(tmp_path / "all.csv", 24, seed=3)
    with open(tmp_path / "all.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    kept = [r for r in rows if r["label"] == "negative"][:10] + [r for r in rows if r["label"] == "positive"][:2]
    with open(tmp_path / "train.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    config = tiny_config(str(tmp_path))
    config["tasks"]["tiny"].update(
        source={"train": str(tmp_path / "train.csv"), "eval": str(tmp_path / "eval.csv")}, class_weights="balanced"
    )
    task = TaskSpec.from_dict("tiny", config["tasks"]["tiny"])
    prepare_task_data(dataclasses.replace(task, allow_degenerate_data=True), tmp_path / "prepared")
    method = MethodSpec.from_dict("full", config["methods"]["full"])
    parts = get_task_type(task.type).training_parts(ModelSpec.from_dict({}), task, method, tmp_path / "prepared")
    assert parts.info["class_weights"] == pytest.approx({"negative": 12 / 20, "positive": 12 / 4})
    batch = parts.collator([parts.train_set[i] for i in range(len(parts.train_set))])
    trainer = parts.trainer_class(
        model=parts.model, args=TrainingArguments(str(tmp_path / "out"), use_cpu=True, report_to=[])
    )
    parts.model.eval()
    with torch.no_grad():
        weighted = float(trainer.compute_loss(parts.model, dict(batch)))
        out = parts.model(**dict(batch))
    labels = batch["labels"].numpy()
    nll = -torch.log_softmax(out.logits.float(), dim=-1).numpy()[range(len(labels)), labels]
    w = np.where(labels == 1, 3.0, 0.6)
    assert weighted == pytest.approx(float((w * nll).sum() / w.sum()), rel=1e-5)
    assert abs(weighted - float(out.loss)) > 1e-3  # the model's own (unweighted) loss differs
