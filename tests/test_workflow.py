"""The real snakemake on a tiny study: artifacts, schema, merge, incremental reruns."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import Workflow
from tunetrace.reporting.comparison import validate_comparison

pytestmark = pytest.mark.workflow
RUNS = [("full", "tiny", 0), ("lora_r4", "tiny", 0)]


def test_every_declared_artifact_exists_and_loads(finished_workflow: Workflow) -> None:
    """Prepared data, baseline, runs, evaluations, merge outputs all exist and parse."""
    root = finished_workflow.root
    assert len(pd.read_parquet(root / "results/data/tiny/eval.parquet")) == 24
    json.loads((root / "results/data/tiny/manifest.json").read_text())
    json.loads((root / "results/baseline/tiny/metrics.json").read_text())
    for method, task, seed in RUNS:
        run = root / f"results/runs/{method}/{task}/seed{seed}"
        log_lines = (run / "train_log.jsonl").read_text().splitlines()
        assert log_lines and all("step" in json.loads(line) for line in log_lines)
        assert sorted(p.name for p in (run / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
        assert json.loads((run / "run.json").read_text())["global_steps"] == 4
        predictions = pd.read_parquet(root / f"results/eval/{method}/{task}/seed{seed}/predictions.parquet")
        assert len(predictions) == 24 and predictions["prob_positive"].between(0, 1).all()
        csv_path = root / f"results/eval/{method}/{task}/seed{seed}/predictions.csv"
        assert pd.read_csv(csv_path)["id"].astype(str).tolist() == predictions["example_id"].astype(str).tolist()
        assert json.loads(csv_path.with_name(csv_path.name + ".lineage.json").read_text())["rule"] == "evaluate_run"


def test_metrics_lie_in_range(finished_workflow: Workflow) -> None:
    """Every rate-like metric of every run is within [0, 1] and the loss is finite."""
    for method, task, seed in RUNS:
        path = finished_workflow.root / f"results/eval/{method}/{task}/seed{seed}/metrics.json"
        metrics = json.loads(path.read_text())
        for key in ("accuracy", "precision", "recall", "f1", "macro_f1"):
            assert 0.0 <= metrics[key] <= 1.0
            low, high = metrics["ci"][key]
            assert 0.0 <= low <= high <= 1.0
        assert 0.0 < metrics["loss"] < 10.0
        assert set(metrics["groups"]["groups"]) == {"books", "electronics", "films", "restaurants"}


def test_full_model_and_adapter_load_with_from_pretrained(finished_workflow: Workflow) -> None:
    """The full run's final dir loads with transformers, the LoRA one with PEFT."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from tunetrace.models.names import resolve_model_path

    root = finished_workflow.root
    full = AutoModelForSequenceClassification.from_pretrained(root / "results/runs/full/tiny/seed0/final")
    assert full.config.id2label == {0: "negative", 1: "positive"}
    base = AutoModelForSequenceClassification.from_pretrained(
        resolve_model_path("embedded:all-MiniLM-L6-v2"), num_labels=2
    )
    adapted = PeftModel.from_pretrained(base, root / "results/runs/lora_r4/tiny/seed0/final")
    assert adapted.peft_config["default"].r == 4


def test_merged_model_loads_without_peft_and_matches(finished_workflow: Workflow) -> None:
    """The merged dir has no adapter files, loads as a plain model, and the check passed."""
    from transformers import AutoModelForSequenceClassification

    merged_dir = finished_workflow.root / "results/merged/lora_r4/tiny/seed0"
    assert not (merged_dir / "adapter_config.json").exists()
    model = AutoModelForSequenceClassification.from_pretrained(merged_dir)
    assert not any("lora" in name for name, _ in model.named_parameters())
    check = json.loads((finished_workflow.root / "results/merge_checks/lora_r4/tiny/seed0.json").read_text())
    q = check["quantities"]
    assert check["passed"] and q["max_abs_logit_diff"]["value"] <= 1e-4 and q["label_agreement"]["value"] == 1.0


def test_comparison_validates_and_covers_every_method(finished_workflow: Workflow) -> None:
    """comparison.json passes its schema and reports both methods with parameter counts."""
    doc = json.loads((finished_workflow.root / "results/comparison.json").read_text())
    validate_comparison(doc)
    methods = doc["tasks"]["tiny"]["methods"]
    assert set(methods) == {"full", "lora_r4"}
    assert (
        methods["lora_r4"]["trainable_parameters"]["percent"] < 5 < methods["full"]["trainable_parameters"]["percent"]
    )
    assert methods["lora_r4"]["merge_check"]["passed"] and methods["full"]["merge_check"] is None
    assert all(len(item["sha256"]) == 64 for item in doc["inputs"])
    assert "| full |" in (finished_workflow.root / "results/comparison.md").read_text()


def test_job_logs_hold_lines_not_progress_bar_redraws(finished_workflow: Workflow) -> None:
    """Every job's log file is read by people and tools: no carriage-return redraws of a progress bar (the
    prediction, feature and weight-loading bars are off when stderr is a file)."""
    logs = sorted((finished_workflow.root / "logs").rglob("*.log"))
    assert any("train_run" in str(p) for p in logs) and any("evaluate_baseline" in str(p) for p in logs)
    redrawn = [str(p.relative_to(finished_workflow.root)) for p in logs if "\r" in p.read_text()]
    assert redrawn == []


def test_noop_rerun_plans_nothing(finished_workflow: Workflow) -> None:
    """A second snakemake on a finished tree has nothing to do."""
    assert finished_workflow.planned_jobs() == {}


@pytest.fixture
def finished_copy(finished_workflow: Workflow, tmp_path: Path) -> Workflow:
    """A private copy of the finished study (mtimes kept) that a test may reconfigure."""
    root = tmp_path / "copy"
    shutil.copytree(finished_workflow.root, root, symlinks=True)
    flow = Workflow.__new__(Workflow)
    flow.root, flow.config = root, json.loads(json.dumps(finished_workflow.config))
    return flow


def test_lora_hyperparameter_change_plans_only_that_method(finished_copy: Workflow) -> None:
    """Changing lora r reruns that method's jobs and their dependants, never full fine-tuning."""
    finished_copy.config["methods"]["lora_r4"]["lora"]["r"] = 2
    finished_copy.write_config()
    planned = finished_copy.planned_jobs()
    assert planned == {
        "train_run": 1,
        "evaluate_run": 1,
        "merge_adapter": 1,
        "verify_merge": 1,
        "validate_run": 1,
        "compute_drift": 1,
        "plot_drift": 1,
        "plot_training_curves": 1,
        "compare_runs": 1,
        "summarize_lineage": 1,
        "all": 1,
    }
    dry_run = finished_copy.run("--dry-run").stdout
    outputs = [line for line in dry_run.splitlines() if line.strip().startswith("output:")]
    assert outputs and not [line for line in outputs if "/full/" in line]


def test_bad_config_stops_before_any_job(make_workflow) -> None:
    """A negative learning rate stops snakemake with one message naming the key."""
    flow = make_workflow()
    flow.config["methods"]["full"]["learning_rate"] = -1
    flow.write_config()
    proc = flow.run("--dry-run", check=False)
    assert proc.returncode != 0
    assert "methods.full.learning_rate" in proc.stdout + proc.stderr
    assert not (flow.root / "results").exists()
