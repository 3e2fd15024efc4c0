"""Guard rules in the real workflow: gate GO/NO-GO, validation in the comparison, strict, smoke."""

from __future__ import annotations

import json

import pytest

from conftest import Workflow, tiny_config

pytestmark = pytest.mark.workflow


def guarded_config() -> dict:
    """tiny_config with a gate on `full` (4-step pilot against the majority baseline)."""
    config = tiny_config()
    config["methods"]["full"]["gate"] = {"enabled": True, "pilot_steps": 4, "baseline": "majority"}
    return config


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Workflow:
    """The guarded tiny study, run to results/comparison.json once."""
    flow = Workflow(tmp_path_factory.mktemp("guarded"), guarded_config())
    flow.run("results/comparison.json")
    return flow


def reconfigure(flow: Workflow, edit) -> None:
    flow.config = guarded_config()
    edit(flow.config)
    flow.write_config()


def test_gate_says_go_and_main_run_trains(study: Workflow):
    """The pilot beats the majority baseline by >= 5%: GO, and the gated main run trained."""
    gate = json.loads((study.root / "results/gates/full/tiny/seed0.json").read_text())
    assert gate["decision"] == "GO" and gate["relative_improvement"] >= 0.05
    assert (study.root / "results/runs/full/tiny/seed0/run.json").is_file()


def test_comparison_summarises_validation(study: Workflow):
    """comparison.json carries a validation section covering every run."""
    section = json.loads((study.root / "results/comparison.json").read_text())["validation"]
    assert sorted((r["method"], r["seed"]) for r in section["runs"]) == [("full", 0), ("lora_r4", 0)]
    assert "## Red flags" in (study.root / "results/comparison.md").read_text()


def test_strict_stops_before_comparison(study: Workflow):
    """validation.strict with an unreachable expected range fails and writes no comparison: the previous one (an
    update() output) stands byte for byte, or none exists."""

    def edit(config):
        config["validation"] = {"strict": True}
        config["tasks"]["tiny"]["expected_range"] = {"min": 0.999}

    reconfigure(study, edit)
    assert set(_planned(study)) == {"validate_run", "plot_training_curves", "compare_runs"}
    comparison = study.root / "results/comparison.json"
    before = comparison.read_bytes() if comparison.exists() else None
    proc = study.run("results/comparison.json", check=False)
    assert proc.returncode != 0
    assert (comparison.read_bytes() if comparison.exists() else None) == before
    assert "Traceback" not in (study.root / "logs/compare_runs/compare_runs.log").read_text()
    log = (study.root / "logs/compare_runs/compare_runs.log").read_text()
    assert "metric_below_range" in log and "results/eval/full/tiny/seed0/metrics.json" in log


def test_enforced_no_go_stops_main_run(study: Workflow):
    """An impossible gate threshold says NO-GO and the main run stops before training."""
    reconfigure(study, lambda config: config["methods"]["full"]["gate"].update(threshold=1e6))
    proc = study.run("results/runs/full/tiny/seed0/run.json", check=False)
    assert proc.returncode != 0
    gate = json.loads((study.root / "results/gates/full/tiny/seed0.json").read_text())
    assert gate["decision"] == "NO-GO"
    log = (study.root / "logs/train_run/full/tiny/seed0.log").read_text()
    assert "results/gates/full/tiny/seed0.json says NO-GO" in log and "threshold 1000000.0" in log
    assert not (study.root / "results/runs/full/tiny/seed0/run.json").exists()


def test_smoke_target_passes(study: Workflow):
    """The smoke target trains, reloads every checkpoint, resumes, and the loss falls."""
    reconfigure(study, lambda config: None)
    study.run("results/smoke/lora_r4/tiny.json")
    report = json.loads((study.root / "results/smoke/lora_r4/tiny.json").read_text())
    assert report["passed"] and all(report["checks"].values()) and len(report["checkpoints"]) == 4


def _planned(flow: Workflow) -> dict[str, int]:
    return flow.planned_jobs("results/comparison.json")


def collapsed_config() -> dict:
    """One full run that cannot learn (learning rate 1e-9, 4 steps), no drift, validation.strict on."""
    config = tiny_config()
    config["methods"] = {"full": {**config["methods"]["full"], "learning_rate": 1e-9}}
    config["representations"] = {"enabled": False}
    config["validation"] = {"strict": True}
    return config


def test_collapsed_run_is_critical_and_strict_stops_the_comparison(make_workflow):
    """A run that did not learn ends with critical flags naming the run and the fix, the train log warns
    about too few steps before training, and validation.strict stops compare_runs (no comparison.json);
    with representations off, no weight analysis is written."""
    flow = make_workflow(collapsed_config())
    proc = flow.run("results/comparison.json", check=False)
    assert proc.returncode != 0 and not (flow.root / "results/comparison.json").exists()
    report = json.loads((flow.root / "results/validation/full/tiny/seed0.json").read_text())
    critical = [f for f in report["flags"] if f["severity"] == "critical"]
    assert "loss_barely_moved" in {f["code"] for f in critical}
    # representations off: the validation writes no weight analysis
    assert report["checked"]["weights"] is None and not (flow.root / "results/weights").exists()
    assert all(f["message"].startswith("full/tiny/seed0: ") and "usually fixed by" in f["message"] for f in critical)
    assert "too_few_steps" in {f["code"] for f in report["flags"] if f["severity"] == "warning"}
    train_log = (flow.root / "logs/train_run/full/tiny/seed0.log").read_text()
    assert "full/tiny/seed0: 4 planned optimiser steps" in train_log and "too few steps" in train_log
    compare_log = (flow.root / "logs/compare_runs/compare_runs.log").read_text()
    assert "loss_barely_moved" in compare_log and "results/runs/full/tiny/seed0/train_log.jsonl" in compare_log
