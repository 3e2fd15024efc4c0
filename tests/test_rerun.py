"""Rerun guarantees: after a finished study, only what a change makes stale is planned.

Each test runs the real `snakemake --dry-run` on a tiny two-task study. The study is brought to
"finished" with Snakemake's own `--touch` (placeholder outputs, real metadata: params, input sets,
input checksums, code), so the dry run's decisions are Snakemake's, without training any model.
The workflow (Snakefile, rules, scripts, pkg) is copied, so a test may edit a library module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from conftest import REPO, Workflow, tiny_config, write_sentiment_csv

pytestmark = pytest.mark.workflow
WORKFLOW_PARTS = ("Snakefile", "rules", "workflow_scripts", "pkg", "envs", "report", "profiles")
TRAINING = {"train_run", "prepare_data", "merge_adapter"}


class CopiedWorkflow(Workflow):
    """A Workflow whose Snakefile and library are a private copy, so tests may edit them."""

    def __init__(self, root: Path, config: dict, repo: Path) -> None:
        self.repo = repo
        super().__init__(root, config)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = {**os.environ, "PYTHONPATH": str(self.repo / "pkg"), "WANDB_MODE": "disabled"}
        cmd = [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(self.repo / "Snakefile"),
            "--directory",
            str(self.root),
            "--configfile",
            str(self.root / "config.yaml"),
            "--cores",
            "2",
            "--workflow-profile",
            str(self.repo / "profiles" / "default"),
            *args,
        ]  # the product's rerun rules
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=self.root)
        if check and proc.returncode != 0:
            raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
        return proc

    def finish_by_touch(self) -> None:
        """Create every planned output as a placeholder, then let `snakemake --touch` record it."""
        summary = self.run("--summary").stdout.splitlines()
        for line in summary[1:]:
            path = self.root / line.split("\t")[0]
            if path.suffix:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("placeholder\n")
            else:
                path.mkdir(parents=True, exist_ok=True)
        self.run("--touch", "--forceall")


def two_task_config() -> dict:
    config = tiny_config()
    second = dict(config["tasks"]["tiny"], source={"train": "data/train2.csv", "eval": "data/eval2.csv"})
    config["tasks"]["tiny2"] = second
    return config


def copy_workflow(repo: Path) -> None:
    """The workflow's parts (Snakefile, rules, scripts, library, ...) copied to `repo`, without caches."""
    for part in WORKFLOW_PARTS:
        src, dst = REPO / part, repo / part
        if src.is_dir():
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def copy_study(template: Path, tmp_path: Path, config: dict) -> CopiedWorkflow:
    """A private copy of a finished template (mtimes and Snakemake's metadata copied as they are)."""
    for part in ("repo", "study"):
        shutil.copytree(template / part, tmp_path / part, symlinks=True)
    flow = CopiedWorkflow.__new__(CopiedWorkflow)  # the study exists: no data or config to write
    flow.root, flow.repo, flow.config = tmp_path / "study", tmp_path / "repo", config
    return flow


@pytest.fixture(scope="module")
def finished_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private workflow copy and a tiny two-task study brought to "finished", built once per module."""
    base = tmp_path_factory.mktemp("rerun_template")
    copy_workflow(base / "repo")
    root = base / "study"
    write_sentiment_csv(root / "data" / "train2.csv", 48, seed=3)
    write_sentiment_csv(root / "data" / "eval2.csv", 24, seed=4)
    CopiedWorkflow(root, two_task_config(), base / "repo").finish_by_touch()
    return base


@pytest.fixture
def study(finished_template: Path, tmp_path: Path) -> CopiedWorkflow:
    """Each test gets its own copy of the finished study and workflow, so it may edit config, data or
    library code."""
    return copy_study(finished_template, tmp_path, two_task_config())


def test_noop_rerun_plans_nothing(study: CopiedWorkflow) -> None:
    """A finished study with nothing changed plans no job."""
    assert study.planned_jobs() == {}


def planned(flow: CopiedWorkflow, *args: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job a dry run plans (checkpoint jobs included)."""
    out = flow.run("--dry-run", *args).stdout
    jobs: list[tuple[str, dict[str, str]]] = []
    for line in out.splitlines():
        text = line.strip()
        if text.startswith(("rule ", "localrule ", "checkpoint ", "localcheckpoint ")) and text.endswith(":"):
            jobs.append((text.split()[1].rstrip(":"), {}))
        elif text.startswith("wildcards:") and jobs:
            jobs[-1][1].update(item.strip().split("=", 1) for item in text[len("wildcards:") :].split(","))
    return jobs


def rules_of(jobs: list[tuple[str, dict[str, str]]]) -> set[str]:
    return {rule for rule, _ in jobs}


def method_of(wildcards: dict[str, str]) -> str | None:
    return wildcards.get("method") or wildcards.get("lora_method")


def test_changing_lora_rank_plans_only_that_method(study: CopiedWorkflow) -> None:
    """Changing lora_r4's r reruns lora_r4's jobs and the comparison, nothing of `full` or the data."""
    study.config["methods"]["lora_r4"]["lora"]["r"] = 8
    study.write_config()
    jobs = planned(study)
    assert sum(rule == "train_run" for rule, _ in jobs) == 2
    assert {method_of(w) for _, w in jobs if method_of(w)} == {"lora_r4"}
    assert rules_of(jobs).isdisjoint({"prepare_data", "evaluate_baseline"})
    assert "compare_runs" in rules_of(jobs)


def test_adding_a_seed_plans_only_the_new_seed(study: CopiedWorkflow) -> None:
    """A new seed plans that seed's runs and the comparison; finished seeds and data are kept."""
    study.config["seeds"] = [0, 1]
    study.write_config()
    jobs = planned(study)
    assert {w.get("seed") for _, w in jobs if "seed" in w} == {"1"}
    assert sum(rule == "train_run" for rule, _ in jobs) == 4
    assert rules_of(jobs).isdisjoint({"prepare_data", "evaluate_baseline"})
    assert "compare_runs" in rules_of(jobs)


def test_evaluation_setting_plans_no_training(study: CopiedWorkflow) -> None:
    """An evaluation-only setting reruns evaluations and the comparison, never training or merging."""
    study.config["evaluation"]["bootstrap_samples"] = 60
    study.write_config()
    found = rules_of(planned(study))
    assert "evaluate_run" in found and "compare_runs" in found
    assert found.isdisjoint(TRAINING)


def test_capturing_each_runs_step0_reruns_training_not_the_base_extraction(study: CopiedWorkflow) -> None:
    """representations.capture_step0 changes what training writes (and so drift), not the base extraction."""
    study.config.setdefault("representations", {})["capture_step0"] = True
    study.write_config()
    found = rules_of(planned(study))
    assert {"train_run", "compute_drift", "compare_runs"} <= found
    assert found.isdisjoint({"prepare_data", "extract_base_representations", "evaluate_baseline"})


def test_editing_the_evaluate_step_reruns_evaluation_not_training(study: CopiedWorkflow) -> None:
    """Changing pkg/tunetrace/stages/evaluate.py (the generic evaluate step) reruns evaluations, not training.

    (evaluation/metrics.py is another matter: the classification task type computes metrics during
    training for early stopping, so editing it rightly reruns classification training too.)"""
    module = study.repo / "pkg" / "tunetrace" / "stages" / "evaluate.py"
    module.write_text(module.read_text() + "\n# an edit\n")
    found = rules_of(planned(study))
    assert "evaluate_run" in found
    assert found.isdisjoint(TRAINING)


def test_changing_a_data_file_reruns_only_that_task(study: CopiedWorkflow) -> None:
    """Editing tiny2's training CSV reruns tiny2's jobs (and the comparison), nothing of tiny."""
    write_sentiment_csv(study.root / "data" / "train2.csv", 52, seed=5)
    jobs = planned(study)
    assert {w["task"] for _, w in jobs if "task" in w} == {"tiny2"}
    assert "prepare_data" in rules_of(jobs) and "train_run" in rules_of(jobs)


def test_editing_a_workflow_script_reruns_its_rule_only(study: CopiedWorkflow) -> None:
    """Changing workflow_scripts/evaluate_run.py reruns evaluate_run (and its dependants), no training."""
    script = study.repo / "workflow_scripts" / "evaluate_run.py"
    script.write_text(script.read_text() + "\n# an edit\n")
    found = rules_of(planned(study))
    assert "evaluate_run" in found and "compare_runs" in found
    assert found.isdisjoint(TRAINING | {"evaluate_baseline", "verify_merge"})


def test_touching_files_without_change_reruns_nothing(study: CopiedWorkflow) -> None:
    """A newer mtime, same bytes, on a raw data file, a prepared split, a library module, a workflow
    script and a checkpoint directory: no job."""
    later = os.stat(study.root / "results" / "comparison.json").st_mtime + 60
    run = study.root / "results" / "runs" / "full" / "tiny" / "seed0"
    touched = (
        study.root / "data" / "train.csv",
        study.root / "results" / "data" / "tiny" / "train.parquet",
        study.repo / "pkg" / "tunetrace" / "evaluation" / "metrics.py",
        study.repo / "workflow_scripts" / "train_run.py",
        study.repo / "workflow_scripts" / "evaluate_run.py",
        run / "final",
        run / "checkpoints",
    )
    for path in touched:
        assert path.exists(), path
        os.utime(path, (later, later))
    assert planned(study) == []


# Code hashes (rules/code.smk, tunetrace.provenance.codehash): an edit reruns exactly the jobs whose
# import closure holds the edited file. The study mixes a sequence_classification task ("tiny") with
# an extractive_qa task ("squad", as in config/examples/study_lora_vs_full.yaml), so a file one task
# type runs and the other does not tells the two apart.

QA_EXAMPLE = REPO / "config" / "examples" / "study_lora_vs_full.yaml"


def qa_config() -> dict:
    config = tiny_config()
    config["tasks"]["squad"] = yaml.safe_load(QA_EXAMPLE.read_text())["tasks"]["squad"]
    assert config["tasks"]["squad"]["type"] == "extractive_qa"
    return config


@pytest.fixture(scope="module")
def qa_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workflow copy and a finished (by --touch) study of a classification and a QA task."""
    base = tmp_path_factory.mktemp("codehash_template")
    copy_workflow(base / "repo")
    root = base / "study"
    for name in ("qa_train.json", "qa_eval.json"):
        (root / "data" / "examples").mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / "data" / "examples" / name, root / "data" / "examples" / name)
    CopiedWorkflow(root, qa_config(), base / "repo").finish_by_touch()
    return base


@pytest.fixture
def qa_study(qa_template: Path, tmp_path: Path) -> CopiedWorkflow:
    return copy_study(qa_template, tmp_path, qa_config())


def append_comment(path: Path) -> None:
    assert path.is_file(), path
    path.write_text(path.read_text() + "\n# an edit\n")


def jobs_of(jobs: list[tuple[str, dict[str, str]]], task: str) -> set[str]:
    return {rule for rule, w in jobs if w.get("task") == task}


def test_qa_study_noop_plans_nothing(qa_study: CopiedWorkflow) -> None:
    """The baseline of the tests below: the finished two-type study plans no job."""
    assert planned(qa_study) == []


def test_editing_squad_scoring_reruns_the_qa_task_only(qa_study: CopiedWorkflow) -> None:
    """squad.py is code of the extractive_qa type only (reached through tunetrace.tasks.extractive_qa):
    the QA task's evaluations (and what reads them) rerun, no job of the classification task."""
    append_comment(qa_study.repo / "pkg" / "tunetrace" / "evaluation" / "squad.py")
    jobs = planned(qa_study)
    # the whole QA task reruns: tasks/extractive_qa.py imports squad.py at module level, so every rule
    # that runs the extractive_qa type (training included) has squad.py in its closure
    assert {w["task"] for _, w in jobs if "task" in w} == {"squad"}
    assert not jobs_of(jobs, "tiny")
    assert sum(rule == "evaluate_run" for rule, _ in jobs) == 2  # full and lora_r4 on squad, seed 0
    assert {"evaluate_run", "evaluate_baseline"} <= jobs_of(jobs, "squad")
    assert "compare_runs" in rules_of(jobs)


def test_editing_drift_reruns_drift_and_comparison_not_training(qa_study: CopiedWorkflow) -> None:
    """analysis/drift.py is code of compute_drift, plot_drift and compare_runs: those rerun (every task)
    and the lineage summary that reads the comparison; no training, evaluation or representation
    extraction."""
    append_comment(qa_study.repo / "pkg" / "tunetrace" / "analysis" / "drift.py")
    jobs = planned(qa_study)
    assert rules_of(jobs) == {"compute_drift", "plot_drift", "compare_runs", "summarize_lineage", "all"}
    assert sum(rule == "compute_drift" for rule, _ in jobs) == 4  # 2 methods x 2 tasks x 1 seed
    assert {w["task"] for rule, w in jobs if rule == "plot_drift"} == {"tiny", "squad"}


def test_touching_all_code_reruns_nothing(qa_study: CopiedWorkflow) -> None:
    """A newer mtime on every file of the library and every workflow script (bytes unchanged): no job."""
    later = os.stat(qa_study.root / "results" / "comparison.json").st_mtime + 60
    files = [p for folder in ("pkg", "workflow_scripts") for p in (qa_study.repo / folder).rglob("*") if p.is_file()]
    assert len(files) > 50
    for path in files:
        os.utime(path, (later, later))
    assert planned(qa_study) == []


def test_squad_edit_goes_unseen_without_the_task_type_module(qa_study: CopiedWorkflow) -> None:
    """The tests above can fail: with code.smk's task-type module dropped from the code params (and the
    study re-recorded under that variant), the same squad.py edit plans nothing, so the QA evaluations
    would keep scores computed by the old code."""
    code_smk = qa_study.repo / "rules" / "code.smk"
    text = code_smk.read_text()
    assert text.count("extra = [registry.entry(task_type).module]") == 1
    code_smk.write_text(
        text.replace("extra = [registry.entry(task_type).module] if task_type and dispatches else []", "extra = []")
    )
    qa_study.run("--touch", "--forceall")  # the variant's params become the recorded ones
    append_comment(qa_study.repo / "pkg" / "tunetrace" / "evaluation" / "squad.py")
    assert planned(qa_study) == []


# The rerun matrix: one edit per config section (and code, data, and edits that rerun check_model), each on a
# private copy of the finished two-task study. The planned jobs must be exactly the expected ones, and once
# they have run (recorded with --touch) a dry run must plan nothing: one call reaches the fixed point.
# check_model is a checkpoint (rules/checks.smk): while it is to rerun, a dry run lists every job after it as
# one that may rerun; the check (cheap, no weights) is then run for real and the plan must be exact.

Job = str  # "rule key=value ..." (wildcards sorted)
ENDS = {"compare_runs", "summarize_lineage", "all"}  # the comparison, its lineage summary, the default target


def job_set(jobs: list[tuple[str, dict[str, str]]]) -> set[Job]:
    return {" ".join([rule, *(f"{k}={v}" for k, v in sorted(w.items()))]) for rule, w in jobs}


def every_job(flow: CopiedWorkflow) -> set[Job]:
    """Every job of the study under its current config (a forced dry run)."""
    return job_set(planned(flow, "--forceall"))


def select(jobs: set[Job], rules: set[str] | None = None, **wildcards: str) -> set[Job]:
    """The jobs of `rules` (all rules when None) whose wildcards include `wildcards` (method matches
    lora_method too)."""

    def keep(job: Job) -> bool:
        rule, *items = job.split()
        found = dict(item.split("=", 1) for item in items)
        found.setdefault("method", found.get("lora_method", ""))
        return (rules is None or rule in rules) and all(found.get(k) == v for k, v in wildcards.items())

    return {job for job in jobs if keep(job)}


def ends(jobs: set[Job]) -> set[Job]:
    return select(jobs, ENDS)


def edit_config(section: str, change: Callable[[dict], None]) -> Callable[[CopiedWorkflow], None]:
    def edit(flow: CopiedWorkflow) -> None:
        change(flow.config)
        flow.write_config()

    edit.__name__ = section
    return edit


def add_lora_r8(config: dict) -> None:
    config["methods"]["lora_r8"] = dict(config["methods"]["lora_r4"], lora={"r": 8, "alpha": 16})


def add_lora_r8_and_bootstrap(config: dict) -> None:
    add_lora_r8(config)
    config["evaluation"]["bootstrap_samples"] = 60


def edit_module(relative: str) -> Callable[[CopiedWorkflow], None]:
    def edit(flow: CopiedWorkflow) -> None:
        append_comment(flow.repo / "pkg" / "tunetrace" / relative)

    return edit


def edit_data(flow: CopiedWorkflow) -> None:
    write_sentiment_csv(flow.root / "data" / "train2.csv", 52, seed=5)


# Expected jobs: a function of every job of the study after the edit.
Expect = Callable[[set[Job]], set[Job]]
EVALUATION_RULES = {"evaluate_baseline", "evaluate_run", "verify_merge", "validate_run"}
RUN_RULES = {"train_run", "evaluate_run", "validate_run", "compute_drift", "merge_adapter", "verify_merge"}
# every task's plot_drift and plot_training_curves: each task's plots read every method's and seed's runs
PLOTS = {"plot_drift", "plot_training_curves"}
CURVES = {"plot_training_curves"}  # reads each run's validation report: reruns with validate_run

MATRIX: dict[str, tuple[Callable[[CopiedWorkflow], None], bool, Expect]] = {
    # id: (edit, reruns check_model, expected jobs)
    "model": (
        edit_config("model", lambda c: c["model"].update(dtype="bfloat16")),
        True,
        lambda new: new - select(new, {"prepare_data", "check_model"}),
    ),
    "task_key_read_by_the_model": (
        edit_config("task", lambda c: c["tasks"]["tiny2"].update(max_length=24)),
        True,
        lambda new: select(new, task="tiny2") - select(new, {"check_model"}) | ends(new),
    ),
    "task_key_read_by_the_guard": (
        edit_config("task", lambda c: c["tasks"]["tiny2"].update(expected_range={"min": 0.1})),
        False,
        lambda new: select(new, {"validate_run", *CURVES}, task="tiny2") | ends(new),
    ),
    "method_key": (
        edit_config("method", lambda c: c["methods"]["full"].update(learning_rate=1e-4)),
        False,
        lambda new: select(new, RUN_RULES, method="full") | select(new, PLOTS) | ends(new),
    ),
    "add_a_method": (
        edit_config("methods", add_lora_r8),
        True,
        lambda new: select(new, method="lora_r8") | select(new, PLOTS) | ends(new),
    ),
    "remove_a_method": (
        edit_config("methods", lambda c: c["methods"].pop("lora_r4")),
        True,
        lambda new: select(new, PLOTS) | ends(new),
    ),
    "seeds": (
        edit_config("seeds", lambda c: c.update(seeds=[0, 1])),
        False,
        lambda new: select(new, seed="1") | select(new, PLOTS) | ends(new),
    ),
    "evaluation": (
        edit_config("evaluation", lambda c: c["evaluation"].update(bootstrap_samples=60)),
        False,
        lambda new: select(new, EVALUATION_RULES | CURVES) | ends(new),
    ),
    "representations": (
        edit_config("representations", lambda c: c.setdefault("representations", {}).update(cka_batch_size=128)),
        False,
        lambda new: select(new, {"compute_drift", "plot_drift"}) | ends(new),
    ),
    "validation": (
        edit_config("validation", lambda c: c.setdefault("validation", {}).update(loss_stall_ratio=0.9)),
        False,
        lambda new: select(new, {"validate_run", *CURVES}) | ends(new),
    ),
    "gate_of_a_disabled_gate": (
        edit_config("gate", lambda c: c["methods"]["full"].update(gate={"threshold": 0.2})),
        False,
        lambda new: set(),
    ),
    "gate_enabled": (
        edit_config("gate", lambda c: c["methods"]["lora_r4"].update(gate={"enabled": True})),
        False,
        lambda new: select(new, method="lora_r4") | select(new, PLOTS) | ends(new),
    ),
    "code_of_a_stage": (
        edit_module("analysis/drift.py"),
        False,
        lambda new: select(new, {"compute_drift", "plot_drift"}) | ends(new),
    ),
    "code_of_the_check_only": (edit_module("stages/check_model.py"), True, lambda new: set()),
    "data": (edit_data, False, lambda new: select(new, task="tiny2") - select(new, {"check_model"}) | ends(new)),
    "add_a_method_and_an_evaluation_setting": (
        edit_config("methods", add_lora_r8_and_bootstrap),
        True,
        lambda new: select(new, method="lora_r8") | select(new, PLOTS) | select(new, EVALUATION_RULES) | ends(new),
    ),
}


def run_pending_checks(flow: CopiedWorkflow) -> set[Job]:
    """Run every model check the study plans, for real (no weights are loaded); return the checks run."""
    checks = select(job_set(planned(flow)), {"check_model"})
    targets = [f"results/checks/model/{job.split('task=')[1]}.json" for job in checks]
    if targets:
        flow.run(*targets)
    return checks


@pytest.mark.parametrize("case", list(MATRIX))
def test_rerun_matrix(study: CopiedWorkflow, case: str) -> None:
    """An edit plans exactly the jobs it makes stale, and after they ran a dry run plans nothing."""
    edit, reruns_check, expect = MATRIX[case]
    edit(study)
    expected = expect(every_job(study))
    first_plan = job_set(planned(study))
    checks = run_pending_checks(study)
    assert bool(checks) == reruns_check, checks
    if reruns_check:  # while the check is pending, the jobs after it are listed as ones that may rerun
        assert expected <= first_plan, sorted(expected - first_plan)
    else:
        assert first_plan == expected, (sorted(first_plan - expected), sorted(expected - first_plan))
    plan = job_set(planned(study))
    assert plan == expected, (sorted(plan - expected), sorted(expected - plan))
    if plan:
        study.run("--touch")
    assert planned(study) == []


def jobs_in(text: str) -> list[str]:
    """Rule names of the jobs a snakemake log announces, in order."""
    return [
        line.strip().split()[1].rstrip(":")
        for line in text.splitlines()
        if line.strip().startswith(("rule ", "localrule ", "checkpoint ", "localcheckpoint "))
        and line.strip().endswith(":")
    ]


def test_one_call_reruns_the_check_and_the_training_it_hid(tmp_path: Path) -> None:
    """A real run: dropping the LoRA method (the check reruns) and changing full's learning rate and steps,
    one `snakemake <validation>` reruns the check, training, evaluation and validation, and then a dry run
    plans nothing (the check as an ancient input of training once hid the training from that call)."""
    copy_workflow(tmp_path / "repo")
    config = tiny_config()
    config["representations"] = {"enabled": False}
    flow = CopiedWorkflow(tmp_path / "study", config, tmp_path / "repo")
    target = "results/validation/full/tiny/seed0.json"
    flow.run(target)
    report = (flow.root / target).read_bytes()
    flow.config["methods"].pop("lora_r4")
    flow.config["methods"]["full"].update(learning_rate=1e-8, max_steps=2)
    flow.write_config()
    proc = flow.run(target)
    ran = jobs_in(proc.stdout + proc.stderr)
    assert sorted(ran) == ["check_model", "evaluate_run", "train_run", "validate_run"], ran
    assert (flow.root / target).read_bytes() != report
    assert json.loads((flow.root / "results/runs/full/tiny/seed0/run.json").read_text())["global_steps"] == 2
    assert planned(flow, target) == []
