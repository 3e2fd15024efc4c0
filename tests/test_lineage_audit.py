"""Tamper tests: `tunetrace audit results/comparison.json` on a real tiny study names what changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import REPO, Workflow

pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def study(finished_workflow: Workflow, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the finished tiny study (mtimes kept), so tampering cannot leak."""
    root = tmp_path_factory.mktemp("audit") / "study"
    shutil.copytree(finished_workflow.root, root, symlinks=True)
    return root


def audit(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "pkg")}
    return subprocess.run(
        [sys.executable, "-m", "tunetrace.cli", "audit", "results/comparison.json", "--json"],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
    )


def problems(proc: subprocess.CompletedProcess) -> dict[str, str]:
    """path -> status of every node the audit flags."""
    return {p["path"]: p["status"] for p in json.loads(proc.stdout)["problems"]}


@pytest.fixture
def keep() -> Iterator[Callable[[Path], Path]]:
    """keep(path) saves a file's bytes and mtime; it is restored exactly after the test."""
    saved: dict[Path, tuple[bytes, int]] = {}

    def save(path: Path) -> Path:
        saved.setdefault(path, (path.read_bytes(), path.stat().st_mtime_ns))
        return path

    yield save
    for path, (data, mtime_ns) in saved.items():
        path.write_bytes(data)
        os.utime(path, ns=(mtime_ns, mtime_ns))


def test_untouched_tree_passes(study: Path) -> None:
    """On an untouched study the audit verifies every node and exits 0."""
    proc = audit(study)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert any(n["kind"] == "source" and n["path"].endswith("train.csv") for n in result["nodes"].values())
    assert any(n["kind"] == "model" for n in result["nodes"].values())


def test_flipped_checkpoint_byte_is_modified(study: Path, keep: Callable[[Path], Path]) -> None:
    """One flipped byte in a checkpoint's weights makes its checkpoints directory `modified`."""
    ckpt_dir = study / "results/runs/full/tiny/seed0/checkpoints"
    weights = keep(sorted(ckpt_dir.rglob("*.safetensors"))[-1])
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    proc = audit(study)
    assert proc.returncode == 1
    assert problems(proc) == {"results/runs/full/tiny/seed0/checkpoints": "modified"}
    assert weights.relative_to(ckpt_dir).as_posix() in proc.stdout


def test_deleted_file_is_missing(study: Path, keep: Callable[[Path], Path]) -> None:
    """A file deleted from a run's final adapter directory is reported `missing`, by name."""
    final = study / "results/runs/lora_r4/tiny/seed0/final"
    victim = keep(sorted(final.glob("*.safetensors"))[0])
    victim.unlink()
    proc = audit(study)
    assert proc.returncode == 1
    assert problems(proc) == {"results/runs/lora_r4/tiny/seed0/final": "missing"}
    assert victim.name in proc.stdout


def test_edited_data_file_is_modified(study: Path, keep: Callable[[Path], Path]) -> None:
    """An edited raw data file no longer matches the sha256 its prepare_data job recorded."""
    csv = keep(study / "data" / "train.csv")
    csv.write_text(csv.read_text().replace("wonderful", "wondrous", 1))
    proc = audit(study)
    assert proc.returncode == 1
    assert problems(proc) == {"data/train.csv": "modified"}


def test_rewritten_input_makes_consumer_stale(study: Path, keep: Callable[[Path], Path]) -> None:
    """An input whose record was re-written after its consumer makes the consumer `stale`."""
    sidecar = keep(study / "results/data/tiny/eval.parquet.lineage.json")
    record = json.loads(sidecar.read_text())
    record["id"] = "rewritten-later"
    sidecar.write_text(json.dumps(record))
    flagged = problems(audit(study))
    assert flagged.get("results/eval/full/tiny/seed0/metrics.json") == "stale"
    assert "results/data/tiny/eval.parquet" not in flagged


def test_text_tree_names_problem_and_exit_code(study: Path, keep: Callable[[Path], Path]) -> None:
    """The human-readable tree marks the modified node in capitals; exit code 1."""
    csv = keep(study / "data" / "eval.csv")
    csv.write_text(csv.read_text() + "extra,row,positive,films\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "pkg")}
    proc = subprocess.run(
        [sys.executable, "-m", "tunetrace.cli", "audit", "results/comparison.json"],
        capture_output=True,
        text=True,
        cwd=study,
        env=env,
    )
    assert proc.returncode == 1
    assert any("data/eval.csv" in line and "MODIFIED" in line for line in proc.stdout.splitlines())


def test_report_holds_comparison_and_lineage_summary(study: Path) -> None:
    """`snakemake --report` builds an offline HTML report with the comparison, the lineage summary and each
    task's training curves."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "pkg"), "WANDB_MODE": "disabled"}
    base = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(study),
        "--configfile",
        str(study / "config.yaml"),
        "--cores",
        "2",
        "--workflow-profile",
        "none",
    ]
    build = subprocess.run([*base, "results/lineage/summary.html"], capture_output=True, text=True, env=env, cwd=study)
    assert build.returncode == 0, build.stderr[-3000:]
    assert "train_run" not in build.stderr.split("Job stats:")[-1].split("total")[0]
    report = subprocess.run(
        [*base, "--report", "results/report.html"], capture_output=True, text=True, env=env, cwd=study
    )
    assert report.returncode == 0, report.stderr[-3000:]
    assert "Adding comparison.md" in report.stderr and "Adding summary.html" in report.stderr
    assert "_loss_curves.png" in report.stderr, report.stderr[-3000:]
    assert json.loads((study / "results/lineage/audit.json").read_text())["ok"] is True
