"""A forged number whose record was rewritten to match: `tunetrace audit --recompute` derives it again from its
inputs and names the file and field, the lineage chain names the rewritten record, and the next `snakemake`
refuses a hand-edited comparison.json with the command that rebuilds it (checked when the DAG is built).

One module fixture copies the shared finished tiny study once (conftest.finished_workflow); each test works on
its own copy of that copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, Workflow
from tunetrace.recompute import TIMESTAMP

pytestmark = pytest.mark.workflow
FORGED = "results/eval/full/tiny/seed0/metrics.json"
COMPARISON = "results/comparison.json"
MTIME_ONLY = ("--rerun-triggers", "mtime")  # only the edited file decides, not other edits of the checkout


def tunetrace(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "pkg"), "WANDB_MODE": "disabled"}
    return subprocess.run(
        [sys.executable, "-m", "tunetrace.cli", *args], capture_output=True, text=True, cwd=root, env=env
    )


def forge_with_record(root: Path, path: str, key: str, value: float) -> None:
    """Edit one number of a JSON output and rewrite its lineage record's sha256, size and mtime to match."""
    target = root / path
    document = json.loads(target.read_text())
    document[key] = value
    target.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    side = target.with_name(target.name + ".lineage.json")
    record = json.loads(side.read_text())
    stat, sha = target.stat(), hashlib.sha256(target.read_bytes()).hexdigest()
    record["artifact"]["files"][0].update(sha256=sha, size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    record["artifact"]["sha256"] = sha
    side.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


@pytest.fixture(scope="module")
def study(finished_workflow: Workflow, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("recompute") / "study"
    shutil.copytree(finished_workflow.root, root, symlinks=True)
    return root


@pytest.fixture
def copy(study: Path, tmp_path: Path) -> Path:
    root = tmp_path / "study"
    shutil.copytree(study, root, symlinks=True)
    return root


def test_honest_study_passes_recompute(study: Path) -> None:
    """An untouched study: every recomputed number agrees, the audit exits 0, no record is unchained."""
    proc = tunetrace(study, "audit", COMPARISON, "--recompute")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "all numbers agree" in proc.stdout and "unchained" not in proc.stdout
    result = json.loads(tunetrace(study, "audit", COMPARISON, "--recompute", "--json").stdout)
    assert {"evaluate_run", "compare_runs"} <= {
        json.loads((study / (p + ".lineage.json")).read_text())["rule"] for p in result["recompute"]["checked"]
    }


def test_forged_metric_with_rewritten_record_fails_recompute(copy: Path) -> None:
    """accuracy 0.99 with a matching record passes the hash audit, but --recompute names the file and the field,
    and the chain names the rewritten record."""
    forge_with_record(copy, FORGED, "accuracy", 0.99)
    plain = tunetrace(copy, "audit", COMPARISON)
    assert "chain broken: results/eval/full/tiny/seed0/metrics.json's record changed after" in plain.stdout
    assert plain.returncode == 1
    proc = tunetrace(copy, "audit", COMPARISON, "--recompute")
    assert proc.returncode == 1
    line = next(x for x in proc.stdout.splitlines() if x.strip().startswith(f"MISMATCH {FORGED}"))
    assert "$.accuracy: stored 0.99 != recomputed" in line
    mismatches = json.loads(tunetrace(copy, "audit", COMPARISON, "--recompute", "--json").stdout)["recompute"]
    fields = {(m["path"], m["field"]) for m in mismatches["mismatches"] if m["path"] == FORGED}
    assert fields == {(FORGED, "$.accuracy")}


def test_record_without_chain_is_unchained_not_failed(copy: Path) -> None:
    """A record written before chaining (no record_sha256 for its inputs) is reported as unchained, exit 0."""
    side = copy / (COMPARISON + ".lineage.json")
    record = json.loads(side.read_text())
    for entry in record["inputs"]:
        entry.pop("record_sha256", None)
    side.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    proc = tunetrace(copy, "audit", COMPARISON)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "unchained" in proc.stdout and FORGED in proc.stdout.split("unchained")[-1]


def test_edited_comparison_json_is_refused_by_the_next_snakemake(copy: Path, finished_workflow: Workflow) -> None:
    """A hand edit of comparison.json is found when the DAG is built: snakemake stops with the file and the
    command, nothing is touched, and that command rebuilds both renderings so the audit passes again."""
    flow = Workflow.__new__(Workflow)
    flow.root, flow.config = copy, finished_workflow.config
    target, markdown = copy / COMPARISON, copy / "results/comparison.md"
    markdown_before = markdown.read_text()
    document = json.loads(target.read_text())
    document["tasks"]["tiny"]["methods"]["full"]["metrics"]["accuracy"]["mean"] = 0.99
    edited = json.dumps(document, indent=2)
    target.write_text(edited)
    refused = flow.run(*MTIME_ONLY, check=False)
    assert refused.returncode != 0
    message = refused.stdout + refused.stderr
    assert f"{COMPARISON}: file comparison.json: sha256" in message
    assert f"snakemake --forcerun {COMPARISON}" in message
    assert target.read_text() == edited and markdown.read_text() == markdown_before
    flow.run(*MTIME_ONLY, "--forcerun", COMPARISON)
    assert TIMESTAMP.sub("", markdown.read_text()) == TIMESTAMP.sub("", markdown_before)
    assert json.loads(target.read_text())["tasks"]["tiny"]["methods"]["full"]["metrics"]["accuracy"]["mean"] != 0.99
    assert tunetrace(copy, "audit", COMPARISON).returncode == 0
