"""The profiles as snakemake reads them: the local keys of the workflow profile (profiles/default) apply to
local runs only, so `--profile slurm` keeps its own keep-going, latency-wait and cores (issue 14, item 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import REPO

# snakemake's own argument parsing, profiles included, run as the `snakemake` command would be (the workflow
# profile reads sys.argv); prints the settings that decide the run
PARSE = """
import json, sys
from snakemake.cli import parse_args
sys.argv = ["snakemake", *sys.argv[1:]]
_, args = parse_args(sys.argv[1:])
print(json.dumps({"cores": args.cores, "keep_going": args.keep_going, "latency_wait": args.latency_wait,
                  "executor": args.executor, "rerun_triggers": sorted(t.name.lower() for t in args.rerun_triggers)}))
"""


def effective(*argv: str, env: dict | None = None) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PARSE, *argv, "-n"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return json.loads(proc.stdout.splitlines()[-1])


def test_local_run_gets_the_local_defaults() -> None:
    """Plain `snakemake`: two cores, stop at the first failure, 5 s latency wait, content-based rerun triggers."""
    assert effective() == {
        "cores": 2,
        "keep_going": False,
        "latency_wait": 5,
        "executor": None,
        "rerun_triggers": ["input", "mtime", "params", "software_env"],
    }


@pytest.mark.parametrize("argv", [("--profile", "profiles/slurm"), ("--profile=profiles/slurm",)])
def test_slurm_profile_wins_over_the_local_keys(argv: tuple[str, ...]) -> None:
    """`--profile slurm`: the slurm profile's keep-going and latency-wait, no local core cap on cluster jobs,
    the shared rerun triggers still from the workflow profile."""
    assert effective(*argv) == {
        "cores": None,
        "keep_going": True,
        "latency_wait": 60,
        "executor": "slurm",
        "rerun_triggers": ["input", "mtime", "params", "software_env"],
    }


def test_profile_from_the_environment_counts_too() -> None:
    """SNAKEMAKE_PROFILE=slurm-path is a cluster run as well."""
    assert effective(env={"SNAKEMAKE_PROFILE": str(REPO / "profiles" / "slurm")})["latency_wait"] == 60


def test_slurm_profile_sets_squeue_and_says_why_first() -> None:
    """The shipped profile polls with squeue, and its first line names the failure that prevents."""
    text = (REPO / "profiles" / "slurm" / "config.yaml").read_text()
    assert yaml.safe_load(text)["slurm-status-command"] == "squeue"
    first = text.splitlines()[0]
    assert first.startswith("# slurm-status-command is squeue") and "sacct" in first and "forever" in first


def dry_run_resources(*argv: str) -> dict[str, dict[str, str]]:
    """Each rule's resources in a dry run of the default study (first job of the rule), as Snakemake resolves them."""
    command = [sys.executable, "-m", "snakemake", "-n", "--workflow-profile", "none", "--cores", "1", *argv]
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    found: dict[str, dict[str, str]] = {}
    rule = None
    for line in proc.stdout.splitlines():
        if line.startswith(("rule ", "localrule ", "checkpoint ", "localcheckpoint ")):
            rule = line.split()[-1].rstrip(":")
        elif rule and line.strip().startswith("resources:") and rule not in found:
            items = line.split(":", 1)[1].strip().split(", ")
            found[rule] = dict(item.split("=", 1) for item in items)
    return found


def test_profile_overrides_grow_with_the_attempt() -> None:
    """set-resources mem_mb / runtime given as numbers are first-attempt values: attempt 2 asks twice as much, as it
    does of the derived requests."""
    override = ("--set-resources", "check_model:mem_mb=3000", "check_model:runtime=7")
    first, second = (dry_run_resources("--attempt", str(a), *override) for a in (1, 2))
    assert (first["check_model"]["mem_mb"], first["check_model"]["runtime"]) == ("3000", "7")
    assert (second["check_model"]["mem_mb"], second["check_model"]["runtime"]) == ("6000", "14")
    baseline = first["evaluate_baseline"]
    assert int(second["evaluate_baseline"]["mem_mb"]) == 2 * int(baseline["mem_mb"])


LOCALRULES = """
import json
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import OutputSettings, ResourceSettings
with SnakemakeApi(OutputSettings(quiet=True)) as api:
    workflow = api.workflow(snakefile=Path("Snakefile"), resource_settings=ResourceSettings())._workflow
    print(json.dumps(sorted(workflow._localrules)))
"""


def test_workflow_localrules_are_the_requests_local_rules() -> None:
    """The workflow's localrules are tunetrace.cluster.requests.LOCAL_RULES: a cluster run submits only the jobs
    that need a node."""
    from tunetrace.cluster.requests import LOCAL_RULES

    proc = subprocess.run([sys.executable, "-c", LOCALRULES], cwd=REPO, capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout.splitlines()[-1]) == sorted(LOCAL_RULES)


def test_slurm_profile_leaves_requests_to_the_rules() -> None:
    """The slurm profile sets no memory or runtime of its own (every rule asks tunetrace.cluster.requests), and the
    rules its set-resources examples name exist."""
    from tunetrace.cluster.requests import RULES

    text = (REPO / "profiles" / "slurm" / "config.yaml").read_text()
    profile = yaml.safe_load(text)
    assert not {"mem_mb", "runtime"} & set(profile.get("default-resources") or {})
    examples = yaml.safe_load(
        "\n".join(
            line.removeprefix("# ")
            for line in text.split("# set-resources:")[1].splitlines()
            if line.startswith("#   ")
        )
    )
    assert examples and set(examples) <= set(RULES) - {r for r, s in RULES.items() if s.local}


def test_slurm_logs_of_a_requeued_job_are_appended() -> None:
    """A requeue keeps the Slurm job id, so the plugin's %j.log is the same file: the profile asks sbatch to append
    (the first attempt's log stays), with an option the plugin lets through."""
    from types import SimpleNamespace

    from snakemake_executor_plugin_slurm.validation import validate_slurm_extra

    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    extra = profile["default-resources"]["slurm_extra"]
    assert "--open-mode=append" in extra
    validate_slurm_extra(SimpleNamespace(resources=SimpleNamespace(slurm_extra=extra)))
