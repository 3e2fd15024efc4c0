"""Several studies side by side: each in its own directory, run with `snakemake -s <checkout>/Snakefile
--directory <study> --configfile <study>/config.yaml`, and `tunetrace status|audit|doctor` taking the same
--directory and --configfile."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, Workflow, tiny_config
from tunetrace import study as study_module
from tunetrace.config import ConfigError
from tunetrace.study import add_study_options, load_study_config, package_checkout, study_from_args


def tunetrace(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "pkg"), "WANDB_MODE": "disabled"}
    return subprocess.run(
        [sys.executable, "-m", "tunetrace.cli", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_study_options(parser)
    return parser.parse_args(argv)


def two_studies(root: Path) -> tuple[Workflow, Workflow]:
    """Two studies in sibling directories: the second with one method and two seeds."""
    first = Workflow(root / "study1", tiny_config())
    config = tiny_config()
    config["methods"] = {"lora_r4": config["methods"]["lora_r4"]}
    config["seeds"] = [0, 1]
    return first, Workflow(root / "study2", config)


def test_study_options_resolve_like_snakemake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative --configfile resolves from where the command runs; the checkout's Snakefile is the fallback."""
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "config.yaml").write_text("{}")
    monkeypatch.chdir(tmp_path)
    study = study_from_args(parse("--directory", "s", "--configfile", "s/config.yaml"))
    assert study.directory == tmp_path / "s" and study.configfiles == (tmp_path / "s" / "config.yaml",)
    assert study.snakefile == package_checkout() / "Snakefile"
    assert study.snakemake_args() == [
        "--snakefile",
        str(package_checkout() / "Snakefile"),
        "--configfile",
        str(tmp_path / "s" / "config.yaml"),
    ]


def test_bad_study_options_name_the_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing directory or config file is an error naming the option; no --configfile names the default used."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="--directory nowhere: no such directory"):
        study_from_args(parse("--directory", "nowhere"))
    with pytest.raises(ConfigError, match="--configfile .*missing.yaml: no such file"):
        study_from_args(parse("--configfile", "missing.yaml"))
    study = study_from_args(parse())
    assert "the embedded default: no --configfile given" in study.describe()
    with pytest.raises(ConfigError, match="pass the study's --configfile"):
        load_study_config(study)


def test_package_checkout_is_the_repository_it_is_imported_from() -> None:
    """Imported from this checkout's pkg/, the package knows this checkout (and its Snakefile)."""
    assert package_checkout() == REPO


def test_no_snakefile_and_no_checkout_names_snakefile_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed package (no checkout) with no Snakefile around asks for --snakefile instead of guessing."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(study_module, "package_checkout", lambda: None)
    with pytest.raises(ConfigError, match="runs from an install, not from a checkout.*pass --snakefile"):
        study_from_args(parse())


def test_an_installed_copy_asks_for_the_snakefile(tmp_path: Path) -> None:
    """The package outside a checkout's pkg/ (as in site-packages) knows no workflow: status asks for --snakefile."""
    site = tmp_path / "site-packages"
    shutil.copytree(REPO / "pkg" / "tunetrace", site / "tunetrace", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(site), "WANDB_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, "-m", "tunetrace.cli", "status"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert proc.returncode != 0 and "runs from an install, not from a checkout's pkg/" in proc.stderr, proc.stderr
    assert "pass --snakefile <checkout>/Snakefile" in proc.stderr


@pytest.mark.workflow
def test_status_reads_each_study_by_directory_and_configfile(tmp_path: Path) -> None:
    """From one place, `tunetrace status --directory D --configfile D/config.yaml` reports each study's own runs
    (planned, nothing run yet), and names the study it read."""
    first, second = two_studies(tmp_path)
    reports = {}
    for flow in (first, second):
        proc = tunetrace(
            tmp_path,
            "status",
            "--json",
            "--directory",
            flow.root.name,
            "--configfile",
            f"{flow.root.name}/config.yaml",
            "--",
            "--workflow-profile",
            "none",
        )
        assert proc.returncode == 1, proc.stderr[-3000:]  # runs missing: not all done
        assert f"study {flow.root}: config {flow.root / 'config.yaml'}" in proc.stderr
        reports[flow.root.name] = sorted((r["method"], r["seed"], r["state"]) for r in json.loads(proc.stdout))
    assert reports == {
        "study1": [("full", 0, "missing"), ("lora_r4", 0, "missing")],
        "study2": [("lora_r4", 0, "missing"), ("lora_r4", 1, "missing")],
    }


@pytest.mark.workflow
def test_two_studies_run_side_by_side(tmp_path: Path) -> None:
    """The documented command, started for two study directories at once, finishes both; each study's
    audit passes from outside it with --directory."""
    first, second = two_studies(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO / "pkg"), "WANDB_MODE": "disabled"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "snakemake",
                "-s",
                str(REPO / "Snakefile"),
                "--directory",
                flow.root.name,
                "--cores",
                "1",
                "results/comparison.json",
                "--configfile",
                f"{flow.root.name}/config.yaml",
            ],
            cwd=tmp_path,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for flow in (first, second)
    ]
    outputs = [p.communicate(timeout=1200)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    for flow in (first, second):
        comparison = json.loads((flow.root / "results/comparison.json").read_text())
        assert (set(comparison["tasks"]["tiny"]["methods"]), comparison["seeds"]) == (
            set(flow.config["methods"]),
            flow.config["seeds"],
        )
        audit = tunetrace(tmp_path, "audit", "results/comparison.json", "--directory", flow.root.name)
        assert audit.returncode == 0, audit.stdout[-3000:]
