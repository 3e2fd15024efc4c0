"""Scoring a saved checkpoint of a run (rule evaluate_checkpoint): results/eval/.../step{N}/metrics.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import tiny_config
from tunetrace.stages.evaluate_checkpoint import CheckpointMissing, find_checkpoint


def test_missing_step_names_the_saved_steps_and_the_key(tmp_path: Path):
    """A step the run did not save is refused, listing the saved steps and methods.<m>.save_every_steps."""
    for step in (2, 4):
        (tmp_path / f"checkpoint-{step}").mkdir()
    assert find_checkpoint(tmp_path, 4, "full") == tmp_path / "checkpoint-4"
    with pytest.raises(
        CheckpointMissing,
        match=r"no checkpoint at step 3 \(saved steps: \[2, 4\]\).*"
        r"methods\.full\.save_every_steps",
    ):
        find_checkpoint(tmp_path, 3, "full")


@pytest.mark.workflow
def test_checkpoint_step_is_scored_with_lineage(make_workflow):
    """The target results/eval/full/tiny/seed0/step2/metrics.json scores checkpoint-2 (not the final model) and
    records its lineage."""
    config = tiny_config()
    config["methods"] = {"full": config["methods"]["full"]}
    flow = make_workflow(config)
    flow.run("results/eval/full/tiny/seed0/step2/metrics.json")
    out = flow.root / "results/eval/full/tiny/seed0/step2"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["step"] == 2 and metrics["checkpoint"].endswith("checkpoints/checkpoint-2")
    assert metrics["placement"]["devices"] == ["cpu"]  # placed by models.placement, as the baseline is
    assert metrics["primary_metric"] == "accuracy" and 0.0 <= metrics["primary"] <= 1.0
    assert (out / "predictions.parquet").stat().st_size > 0
    record = json.loads((out / "metrics.json.lineage.json").read_text())
    assert "evaluate_checkpoint" in json.dumps(record) and "checkpoints" in json.dumps(record)
