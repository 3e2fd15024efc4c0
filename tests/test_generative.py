"""generative_classification and distribution task types on a tiny local decoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tunetrace import artifacts as A
from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from tunetrace.data.checks import DataError
from tunetrace.stages.prepare import prepare_task_data
from tunetrace.tasks.distribution import distribution_metrics, wasserstein_1d
from tunetrace.tasks.generative import UNPARSEABLE, parse_label, score

TINY = ModelSpec.from_dict({"name_or_path": "tiny:llama"})


pytestmark = pytest.mark.usefixtures("tiny_decoder_cache")


def test_parse_label_reads_label_line_case_insensitively():
    """'LABEL: Hate' parses to the hate label, with or without a rationale before it."""
    words = ["none", "hate"]
    assert parse_label("LABEL: Hate", words) == 1
    assert parse_label("it insults a group. label: hate.", words) == 1
    assert parse_label(" none", words) == 0


def test_unparseable_generation_is_counted_and_wrong():
    """An output naming no label is -1, counted in `unparseable`, and scored as wrong."""
    words = ["none", "hate"]
    preds = np.array([parse_label(t, words) for t in ["LABEL: hate", "I cannot decide", "LABEL: maybe"]])
    assert preds.tolist() == [1, UNPARSEABLE, UNPARSEABLE]
    frame = pd.DataFrame({A.COL_LABEL: [1, 0, 1]})
    task = TaskSpec.from_dict("g", {"type": "generative_classification", "source": {}, "labels": ["none", "hate"]})
    metrics = score(np.zeros((3, 2)), preds, frame, task, min_group_class_examples=10)
    assert metrics["unparseable"] == 2 and metrics["accuracy"] == pytest.approx(1 / 3)


def test_label_outside_label_set_is_reported(tmp_path):
    """A label value not in `labels` stops data preparation naming the row and the value."""
    path = tmp_path / "d.csv"
    path.write_text("text,label\ngood,hate\nbad,spam\n")
    task = TaskSpec.from_dict(
        "g",
        {
            "type": "generative_classification",
            "source": {"train": str(path), "eval": str(path)},
            "labels": ["none", "hate"],
        },
    )
    with pytest.raises(DataError, match=r"row 3.*'spam' is not in the label set"):
        prepare_task_data(task, tmp_path / "out")


def test_wasserstein_known_values():
    """W1 between point masses at options 0 and 2 is 2; identical distributions give 0."""
    assert wasserstein_1d(np.array([1.0, 0, 0]), np.array([0, 0, 1.0])) == pytest.approx(2.0)
    assert wasserstein_1d(np.array([0.2, 0.3, 0.5]), np.array([0.2, 0.3, 0.5])) == pytest.approx(0.0)


def test_distribution_metrics_mae_and_correlation():
    """MAE and Pearson correlation over all shares, hand-computed."""
    pred = np.array([[0.5, 0.5], [1.0, 0.0]])
    target = np.array([[0.0, 1.0], [1.0, 0.0]])
    metrics = distribution_metrics(pred, target)
    assert metrics["mae"] == pytest.approx(0.25)
    assert metrics["correlation"] == pytest.approx(np.corrcoef(pred.ravel(), target.ravel())[0, 1])
    assert metrics["wasserstein"] == pytest.approx(0.25)


def _write_generative(path: Path) -> Path:
    rows = ["id,text,label,target_ident"]
    for i in range(24):
        hateful = i % 2 == 0
        group = ["women", "immigrants"][(i // 2) % 2]
        rows.append(
            f"c{i},{'I hate' if hateful else 'I like'} {group} ({i}),{'hateful' if hateful else 'non-hateful'},{group}"
        )
    path.write_text("\n".join(rows) + "\n")
    return path


def test_generative_lora_before_and_after_with_groups(tmp_path):
    """Baseline (rich prompt) and LoRA run (simple prompt) both give accuracy, F1 and per-group FPR/FNR."""
    from tunetrace.stages.baseline import evaluate_baseline
    from tunetrace.stages.merge import merge_adapter
    from tunetrace.stages.pilot import score_pilot
    from tunetrace.stages.verify_merge import verify_merge
    from tunetrace.training.loop import train_run

    task = TaskSpec.from_dict(
        "bias",
        {
            "type": "generative_classification",
            "source": {"train": str(_write_generative(tmp_path / "d.csv")), "eval_fraction": 0.5},
            "labels": ["non-hateful", "hateful"],
            "label_words": ["no", "yes"],
            "id_field": "id",
            "group_field": "target_ident",
            "prompt_template": "{text}\nLABEL:",
            "baseline_prompt_template": "Is this text hateful towards a group? {text}\nLABEL:",
            "max_length": 32,
            "primary_metric": "f1",
        },
    )
    prepare_task_data(task, tmp_path / "data")
    spec = EvalSpec.from_dict({"bootstrap_samples": 0})
    base = evaluate_baseline(TINY, task, spec, tmp_path / "data", tmp_path / "baseline" / "metrics.json")
    assert "groups" in base["baselines"]["base_prompted"]
    method = MethodSpec.from_dict(
        "lora", {"type": "lora", "max_steps": 2, "batch_size": 4, "learning_rate": 1e-2, "lora": {"r": 4}}
    )
    train_run(TINY, task, method, 0, tmp_path / "data", tmp_path / "run")
    metrics = score_pilot(TINY, task, method, spec, 0, tmp_path / "data", tmp_path / "run", tmp_path / "eval")
    assert set(metrics["groups"]["groups"]) == {"women", "immigrants"} and metrics["unparseable"] == 0
    merge_adapter(TINY, task, tmp_path / "run" / A.FINAL_DIR, tmp_path / "merged")
    check = verify_merge(
        TINY,
        task,
        EvalSpec.from_dict({}),
        tmp_path / "data",
        tmp_path / "run" / A.FINAL_DIR,
        tmp_path / "merged",
        tmp_path / "c.json",
    )
    assert check["passed"]


def test_distribution_training_moves_towards_targets(tmp_path):
    """A full fine-tune lowers the Wasserstein distance of the predicted option distribution."""
    from tunetrace.stages.baseline import evaluate_baseline
    from tunetrace.stages.pilot import score_pilot
    from tunetrace.training.loop import train_run

    path = tmp_path / "d.jsonl"
    with open(path, "w") as handle:
        for i in range(32):
            handle.write(
                json.dumps({"id": f"q{i}", "text": f"question {i} about tax", "target": [0.7, 0.2, 0.1]}) + "\n"
            )
    task = TaskSpec.from_dict(
        "dist",
        {
            "type": "distribution",
            "source": {"train": str(path), "eval_fraction": 0.25},
            "id_field": "id",
            "options": ["agree", "neutral", "disagree"],
            "max_length": 32,
            "primary_metric": "wasserstein",
        },
    )
    prepare_task_data(task, tmp_path / "data")
    base = evaluate_baseline(TINY, task, EvalSpec.from_dict({}), tmp_path / "data", tmp_path / "b.json")
    method = MethodSpec.from_dict(
        "full", {"type": "full", "max_steps": 8, "batch_size": 8, "learning_rate": 5e-3, "warmup_ratio": 0}
    )
    train_run(TINY, task, method, 0, tmp_path / "data", tmp_path / "run")
    metrics = score_pilot(
        TINY, task, method, EvalSpec.from_dict({}), 0, tmp_path / "data", tmp_path / "run", tmp_path / "eval"
    )
    assert metrics["wasserstein"] < base["baselines"]["base_model"]["wasserstein"]
    assert base["baselines"]["train_mean"]["wasserstein"] == pytest.approx(0.0, abs=1e-9)
