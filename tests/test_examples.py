"""The four example studies in config/examples/ run end to end at tiny size with the real snakemake."""

from __future__ import annotations

import shutil

import pytest
import yaml

from conftest import REPO, Workflow

pytestmark = [pytest.mark.workflow, pytest.mark.usefixtures("tiny_decoder_cache")]


def shrink(config: dict, methods: list[str] | None = None, tasks: list[str] | None = None) -> dict:
    """The example config at test size: one seed, two steps, few rows (optionally fewer methods and tasks)."""
    config["seeds"] = [0]
    config["methods"] = {k: v for k, v in config["methods"].items() if methods is None or k in methods}
    config["tasks"] = {k: v for k, v in config["tasks"].items() if tasks is None or k in tasks}
    for method in config["methods"].values():
        method.update({"max_steps": 2, "batch_size": 8, "logging_steps": 1})
        if "gate" in method:  # two pilot steps decide nothing: the gate is reported, not enforced
            method["gate"].update({"pilot_steps": 2, "enforce": False})
    config.setdefault("validation", {})["smoke_before_training"] = False  # the dry-run test covers the smoke jobs
    for task in config["tasks"].values():
        task.update({"max_train_examples": 24, "max_eval_examples": 12})
    config["evaluation"]["bootstrap_samples"] = min(config["evaluation"].get("bootstrap_samples", 0), 20)
    return config


def run_example(make_workflow, name: str, methods: list[str] | None = None, tasks: list[str] | None = None) -> dict:
    config = shrink(yaml.safe_load((REPO / "config" / "examples" / f"{name}.yaml").read_text()), methods, tasks)
    flow: Workflow = make_workflow(config)
    for folder in ("demo", "examples"):
        shutil.copytree(REPO / "data" / folder, flow.root / "data" / folder, dirs_exist_ok=True)
    flow.run("results/comparison.json")
    import json

    return json.loads((flow.root / "results" / "comparison.json").read_text())


def assert_drift(task: dict, methods: set[str]) -> None:
    """Every task type has representation drift per layer (embeddings + blocks) and weight-space numbers."""
    drift = task["drift"]
    assert set(drift["method_types"]) == methods
    assert len(drift["final_step"]) >= 3 and drift["final_step"][0]["layer_name"] == "embeddings"
    for row in drift["final_step"]:
        for m in methods:
            cka = row["methods"][m]["cka"]["mean"]
            assert 0.0 <= cka <= 1.0 + 1e-6, (row["layer_name"], m, cka)
    assert drift["weights"] and drift["plots"]


def test_study_lora_vs_full(make_workflow):
    """Study 1 (pair and SQuAD v2 tasks; the single-sentence task is the demo's path): full vs LoRA, baselines,
    merge checks."""
    doc = run_example(
        make_workflow, "study_lora_vs_full", ["full_lr5e5_bs16", "lora_r8_lr1e3_bs16"], ["pairs", "squad"]
    )
    squad = doc["tasks"]["squad"]
    assert squad["baseline_reference"] == "no_answer" and "exact" in squad["methods"]["full_lr5e5_bs16"]["metrics"]
    assert squad["methods"]["lora_r8_lr1e3_bs16"]["merge_check"]["passed"]
    assert doc["tasks"]["pairs"]["baseline_reference"] in ("majority", "linear_probe")
    assert doc["tasks"]["pairs"]["methods"]["lora_r8_lr1e3_bs16"]["merge_check"]["passed"]
    assert_drift(squad, {"full_lr5e5_bs16", "lora_r8_lr1e3_bs16"})


def test_study_go_no_go_distribution(make_workflow):
    """Study 2: Wasserstein, MAE and correlation for the base model, uniform, train mean and the runs."""
    doc = run_example(make_workflow, "study_go_no_go_distribution")
    task = doc["tasks"]["opinions"]
    assert set(task["baseline"]) == {"base_model", "uniform", "train_mean"}
    for method in task["methods"].values():
        assert {"wasserstein", "mae", "correlation"} <= set(method["metrics"])
    assert task["methods"]["lora_r8"]["merge_check"]["passed"]
    assert_drift(task, set(task["methods"]))


def test_go_no_go_dry_run_plans_smoke_pilot_and_gate_before_training(make_workflow):
    """The GO/NO-GO example as written plans a smoke test, a pilot and a gate per method before each main run."""
    config = yaml.safe_load((REPO / "config" / "examples" / "study_go_no_go_distribution.yaml").read_text())
    flow: Workflow = make_workflow(config)
    shutil.copytree(REPO / "data" / "examples", flow.root / "data" / "examples", dirs_exist_ok=True)
    jobs = flow.planned_jobs("results/comparison.json")
    methods = len(config["methods"])
    assert (jobs["run_smoke_test"], jobs["pilot_run"], jobs["evaluate_gate"], jobs["train_run"]) == (
        methods,
        methods,
        methods,
        methods,
    )
    order = flow.run("--dry-run", "results/runs/full/opinions/seed0/run.json").stdout
    assert order.index("rule run_smoke_test") < order.index("rule train_run")
    assert order.index("rule evaluate_gate") < order.index("rule train_run")


def test_study_bias_audit(make_workflow):
    """Study 3: baseline prompt vs LoRA simple prompt, per-group FPR/FNR and unparseable counts on both sides."""
    doc = run_example(make_workflow, "study_bias_audit")
    task = doc["tasks"]["toxicity"]
    before = task["baseline"]["base_prompted"]
    after = task["methods"]["lora_r8"]
    assert "unparseable" in before and "unparseable" in after["metrics"]
    assert before["groups"]["groups"] and after["runs"][0]["groups"]["groups"]
    # 12 eval examples over the target groups: no group has evaluation.min_group_class_examples (10) of a class,
    # so every rate is null with its reason and no gap is claimed (not a "perfectly fair" 0.0)
    for groups in (before["groups"], after["runs"][0]["groups"]):
        assert all(g["fpr"] is None and g["fpr_reason"] for g in groups["groups"].values())
        assert groups["fpr_gap"]["gap"] is None and "fewer than two groups" in groups["fpr_gap"]["reason"]
    assert_drift(task, set(task["methods"]))


def test_study_merge_validate(make_workflow):
    """Study 4: loss and perplexity overall and per stratum; the merged model re-validated within 1e-4 / 0.01."""
    doc = run_example(make_workflow, "study_merge_validate")
    method = doc["tasks"]["instructions"]["methods"]["lora_r8"]
    quantities = method["merge_check"]["quantities"]
    assert method["merge_check"]["passed"] and quantities["loss_abs_diff"]["value"] < 1e-4
    assert quantities["perplexity_abs_diff"]["value"] < 0.01
    assert_drift(doc["tasks"]["instructions"], set(doc["tasks"]["instructions"]["methods"]))
    assert set(method["runs"][0]["strata"]) == {"easy", "hard"} and "perplexity" in method["metrics"]
    # the study's criteria reach validate_run: the random-weight tiny model fails its held-out loss < 0.10
    failed = [f for f in doc["validation"]["flags"] if f["code"] == "criterion_not_met"]
    assert any("tasks.instructions.criteria[0]" in f["message"] and f["severity"] == "critical" for f in failed)
