"""training.loop: the Trainer's arguments for evaluation during training and early stopping."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import tiny_config
from tunetrace.config import MethodSpec, TaskSpec, validate_config
from tunetrace.training.loop import training_arguments


def _args(tmp_path: Path, **method):
    config = tiny_config()
    config["methods"]["full"].update(eval_every_steps=2, **method)
    config = validate_config(config)
    return training_arguments(
        MethodSpec.from_dict("full", config["methods"]["full"]),
        TaskSpec.from_dict("tiny", config["tasks"]["tiny"]),
        0,
        tmp_path,
        [],
    )


@pytest.mark.parametrize(
    ("metric", "best", "greater"), [("primary", "accuracy", True), ("eval_loss", "loss", False), ("f1", "f1", True)]
)
def test_early_stopping_follows_the_chosen_metric(tmp_path: Path, metric: str, best: str, greater: bool):
    """early_stopping_metric picks the Trainer's metric_for_best_model and its direction; checkpoints are saved at
    every evaluation so the best one can be loaded at the end."""
    args = _args(tmp_path, early_stopping_patience=3, early_stopping_metric=metric)
    assert (args.metric_for_best_model, args.greater_is_better) == (best, greater)
    assert args.eval_strategy == "steps" and args.eval_steps == 2 and args.save_steps == 2
    assert args.load_best_model_at_end


def test_evaluation_without_early_stopping_keeps_the_final_model(tmp_path: Path):
    """eval_every_steps alone evaluates every N steps and loads no best model."""
    args = _args(tmp_path)
    assert args.eval_strategy == "steps" and not args.load_best_model_at_end and args.metric_for_best_model is None
