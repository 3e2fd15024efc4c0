"""Helpers shared by the guard tests: a prepared tiny task and a tiny training run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from conftest import tiny_config, write_sentiment_csv
from tunetrace.config import MethodSpec, ModelSpec, TaskSpec
from tunetrace.stages.prepare import prepare_task_data


def tiny_task(root: Path) -> tuple[TaskSpec, Path]:
    """The tiny task of conftest.tiny_config, prepared under root/prepared."""
    write_sentiment_csv(root / "data" / "train.csv", 48, seed=1)
    write_sentiment_csv(root / "data" / "eval.csv", 24, seed=2)
    task = TaskSpec.from_dict("tiny", tiny_config(str(root / "data"))["tasks"]["tiny"])
    prepare_task_data(task, root / "prepared")
    return task, root / "prepared"


def tiny_method(name: str = "full", **changes: Any) -> MethodSpec:
    """A method of conftest.tiny_config with some hyperparameters changed."""
    return dataclasses.replace(MethodSpec.from_dict(name, tiny_config()["methods"][name]), **changes)


MODEL = ModelSpec.from_dict({})
