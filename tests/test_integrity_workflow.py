"""No forged number reaches the report: a hand-edited output of a finished tiny study stops the jobs that
read it, `tunetrace status` and `tunetrace audit --fix` name it, and the listed command repairs the tree.

One module fixture walks the story once on a private copy of the shared finished study (forge, status,
snakemake, audit --fix, repair, put an older comparison back); each test checks one step of it.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import REPO, Workflow

pytestmark = pytest.mark.workflow
FORGED = "results/eval/full/tiny/seed0/metrics.json"
# Snakemake decides by mtime only here: the story is about one edited file, and other edits of the shared
# checkout since the session's study was made (code hashes in params) must not rerun the whole study
MTIME_ONLY = ("--rerun-triggers", "mtime")
COMPARISON = ("results/comparison.json", "results/comparison.json.lineage.json", "results/comparison.md")


def tunetrace(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "pkg"), "WANDB_MODE": "disabled"}
    return subprocess.run(
        [sys.executable, "-m", "tunetrace.cli", *args], capture_output=True, text=True, cwd=root, env=env
    )


def commands(fix_output: str) -> list[str]:
    """The `snakemake --forcerun ...` lines that `tunetrace audit --fix` prints, without their comments."""
    return [line.split("#")[0].strip() for line in fix_output.splitlines() if line.startswith("  snakemake ")]


def problems(audit_json: str) -> dict[str, str]:
    return {p["path"]: p["status"] for p in json.loads(audit_json)["problems"]}


@pytest.fixture(scope="module")
def story(finished_workflow: Workflow, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Forge a metric in a copy of the finished study, then run what a user would, recording every answer."""
    root = tmp_path_factory.mktemp("forged") / "study"
    shutil.copytree(finished_workflow.root, root, symlinks=True)
    flow = Workflow.__new__(Workflow)  # the copied study: no data or config to write
    flow.root, flow.config = root, finished_workflow.config
    s = SimpleNamespace(root=root, before={name: (root / name).read_bytes() for name in COMPARISON})
    metrics = json.loads((root / FORGED).read_text())
    s.true_accuracy, metrics["accuracy"] = metrics["accuracy"], 0.99
    (root / FORGED).write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    s.status = tunetrace(
        root,
        "status",
        "--",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--configfile",
        str(root / "config.yaml"),
        "--workflow-profile",
        "none",
    )
    s.run = flow.run(*MTIME_ONLY, check=False)
    s.after = {name: (root / name).read_bytes() for name in COMPARISON}
    s.validate_log = (root / "logs/validate_run/full/tiny/seed0.log").read_text()
    s.fix = tunetrace(root, "audit", "results/comparison.json", "--fix")
    s.repair = [flow.run(*MTIME_ONLY, *shlex.split(command)[1:], check=False) for command in commands(s.fix.stdout)]
    s.repaired_audit = tunetrace(root, "audit", "results/comparison.json", "--json")
    s.repaired = json.loads((root / "results/comparison.json").read_text())
    (root / COMPARISON[0]).write_bytes(s.before[COMPARISON[0]])  # an older comparison.json put back
    s.older = tunetrace(root, "audit", "results/comparison.json", "--json", "--fix")
    (root / COMPARISON[1]).write_bytes(s.before[COMPARISON[1]])  # ... and its older lineage record with it
    s.older_with_record = tunetrace(root, "audit", "results/comparison.json", "--json", "--fix")
    s.auto_repair = tunetrace(
        root,
        "audit",
        "results/comparison.json",
        "--run",
        "--",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--configfile",
        str(root / "config.yaml"),
        "--cores",
        "2",
        "--workflow-profile",
        "none",
        *MTIME_ONLY,
    )
    s.after_auto_repair = tunetrace(root, "audit", "results/comparison.json", "--json")
    return s


def test_status_marks_the_run_modified(story: SimpleNamespace) -> None:
    """`tunetrace status` marks the forged run `modified` and prints the file and its forcerun command."""
    assert story.status.returncode == 1, story.status.stderr[-3000:]
    line = next(line for line in story.status.stdout.splitlines() if line.startswith("full "))
    assert line.split()[:4] == ["full", "tiny", "0", "modified"]
    assert f"snakemake --forcerun {FORGED}" in story.status.stdout


def test_forged_metric_stops_the_jobs_that_read_it(story: SimpleNamespace) -> None:
    """snakemake fails in validate_run, the first reader, whose log names the file, the mismatch and the fix."""
    assert story.run.returncode != 0
    assert "Error in rule validate_run" in story.run.stderr
    assert f"{FORGED} (written by rule evaluate_run) is modified: file metrics.json: sha256" in story.validate_log
    assert f"snakemake --forcerun {FORGED}" in story.validate_log


def test_forged_value_never_reaches_the_comparison(story: SimpleNamespace) -> None:
    """comparison.json, its record and comparison.md are byte for byte the ones from before the forgery."""
    assert story.after == story.before
    assert b"0.99," not in story.after[COMPARISON[0]]


def test_audit_fix_lists_one_forcerun_of_the_forged_file(story: SimpleNamespace) -> None:
    """audit --fix exits 1 and lists exactly one command: regenerate the forged file (its readers follow)."""
    assert story.fix.returncode == 1
    assert commands(story.fix.stdout) == [f"snakemake --forcerun {FORGED}"]


def test_listed_command_repairs_the_tree(story: SimpleNamespace) -> None:
    """Running that command recomputes the metric and everything after it: the audit passes, the true value is back."""
    assert [proc.returncode for proc in story.repair] == [0], story.repair[0].stderr[-3000:]
    assert json.loads(story.repaired_audit.stdout)["ok"] is True
    runs = story.repaired["tasks"]["tiny"]["methods"]["full"]["runs"]
    assert [run["accuracy"] for run in runs] == [story.true_accuracy]


def test_older_comparison_put_back_is_modified(story: SimpleNamespace) -> None:
    """An older comparison.json copied back over the current one differs from its record: audit --fix names it."""
    assert story.older.returncode == 1
    assert problems(story.older.stdout) == {"results/comparison.json": "modified"}
    [entry] = json.loads(story.older.stdout)["repair"]
    assert (entry["path"], entry["action"]) == ("results/comparison.json", "forcerun")


def test_older_comparison_with_its_record_is_stale(story: SimpleNamespace) -> None:
    """Put back with its own older record, the comparison was made from a metric since regenerated: `stale`."""
    assert story.older_with_record.returncode == 1
    assert problems(story.older_with_record.stdout) == {"results/comparison.json": "stale"}


def test_audit_run_repairs_the_stale_comparison_itself(story: SimpleNamespace) -> None:
    """`tunetrace audit --run` runs the one forcerun command it would list, then audits again: exit 0, the
    audit passes, and the comparison holds the true value."""
    assert story.auto_repair.returncode == 0, story.auto_repair.stdout[-2000:] + story.auto_repair.stderr[-3000:]
    assert "running:" in story.auto_repair.stderr and "--forcerun results/comparison.json" in story.auto_repair.stderr
    assert json.loads(story.after_auto_repair.stdout)["ok"] is True
    runs = json.loads((story.root / "results/comparison.json").read_text())["tasks"]["tiny"]["methods"]["full"]["runs"]
    assert [run["accuracy"] for run in runs] == [story.true_accuracy]


def test_refused_forgery_of_a_comparison_input_keeps_the_previous_comparison(
    finished_workflow: Workflow, tmp_path: Path
) -> None:
    """A forged merge check (read by compare_runs alone) stops compare_runs, and the previous comparison.json,
    comparison.md and the record of comparison.json are still there, byte for byte: "nothing was written"."""
    root = tmp_path / "study"
    shutil.copytree(finished_workflow.root, root, symlinks=True)
    flow = Workflow.__new__(Workflow)
    flow.root, flow.config = root, finished_workflow.config
    before = {name: (root / name).read_bytes() for name in COMPARISON}
    forged = root / "results/merge_checks/lora_r4/tiny/seed0.json"
    report = json.loads(forged.read_text())
    report["mean_abs_logit_diff"] = 0.0
    forged.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    proc = flow.run(*MTIME_ONLY, check=False)
    assert proc.returncode != 0 and "Error in rule compare_runs" in proc.stderr
    log = (root / "logs/compare_runs/compare_runs.log").read_text()
    assert "results/merge_checks/lora_r4/tiny/seed0.json (written by rule verify_merge) is modified" in log
    assert "nothing was read or written" in log
    assert {name: (root / name).read_bytes() for name in COMPARISON} == before
