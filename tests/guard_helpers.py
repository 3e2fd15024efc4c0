"""Helpers shared by the guard tests: a prepared tiny task and a tiny training run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from conftest import tiny_config, write_sentiment_csv
from tunetrace.config import MethodSpec, ModelSpec, TaskSpec
from tunetrace.data import prepare_task_data


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


MODEL = ModelSpec()


def planned_jobs(flow: Any, *targets: str) -> dict[str, int]:
    """Rule name -> job count of a dry run (targets first: conftest's planned_jobs puts them after --quiet)."""
    proc = flow.run(*targets, "--dry-run", "--quiet", "rules")
    counts: dict[str, int] = {}
    started = False
    for line in (proc.stdout + proc.stderr).splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            started = True
            continue
        if started and len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts
