"""The slurm profile on a real one-node Slurm cluster (tests/slurm/start_cluster.sh).

Needs root or an installed slurm-wlm and munge. In CI (CI=true) a cluster that cannot start is a
failure; elsewhere the tests skip with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, Workflow
from scale_helpers import make_tiny_bert, tiny_bert_config

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]
SCRIPTS = REPO / "tests" / "slurm"
SUBMITTED = re.compile(r"submitted with SLURM jobid (\d+)")


def _cluster_is_up() -> bool:
    if not shutil.which("sinfo"):
        return False
    probe = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True)
    return probe.returncode == 0 and any(s.startswith(("idle", "mix", "alloc")) for s in probe.stdout.split())


@pytest.fixture(scope="module")
def slurm_cluster() -> None:
    """A running cluster: the one CI started, or one started (and stopped) here."""
    if _cluster_is_up():
        yield
        return
    started = subprocess.run(["bash", str(SCRIPTS / "start_cluster.sh")], capture_output=True, text=True)
    if started.returncode != 0 or not _cluster_is_up():
        message = f"the one-node Slurm cluster did not start:\n{started.stdout}\n{started.stderr[-4000:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message.splitlines()[0] + " (" + (started.stderr.strip().splitlines() or ["?"])[-1] + ")")
    yield
    subprocess.run(["bash", str(SCRIPTS / "stop_cluster.sh")], check=False)


def _squeue_state(job_id: str) -> str:
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    return out.stdout.strip()


def _requested_gpus(job_id: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    match = re.search(r"TresPerJob=\S*gres:gpu:(\d+)", out)
    return match.group(1) if match else ""


def test_installed_profile_name_resolves(tmp_path: Path) -> None:
    """profiles/install.sh makes `--profile slurm` resolve to profiles/slurm from any directory."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    subprocess.run(["bash", str(REPO / "profiles" / "install.sh"), "slurm"], check=True, env=env, capture_output=True)
    link = tmp_path / "xdg" / "snakemake" / "slurm"
    assert link.resolve() == (REPO / "profiles" / "slurm").resolve()
    assert (link / "config.yaml").is_file()


def test_pipeline_runs_through_slurm_with_a_gpu_job(slurm_cluster: None, tmp_path: Path) -> None:
    """Every job of the tiny study is a completed Slurm job; the training job requested a GPU."""
    config = tiny_bert_config(make_tiny_bert(tmp_path / "tiny_bert"), steps=4, save_every=2)
    config["methods"] = {"lora": {**config["methods"]["full"], "type": "lora", "lora": {"r": 4, "alpha": 8},
                                  "resources": {"gpus": 1, "mem_mb": 1000, "runtime": 10, "cpus": 1}}}
    flow = Workflow(tmp_path / "study", config)
    env = {**os.environ, "PYTHONPATH": str(REPO / "pkg"), "WANDB_MODE": "disabled",
           "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    env.pop("SLURM_CONF", None)
    subprocess.run(["bash", str(REPO / "profiles" / "install.sh"), "slurm"], check=True, env=env, capture_output=True)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--configfile", "config.yaml",
         "--profile", "slurm", "--slurm-status-command", "squeue", "--slurm-no-account",
         "--slurm-init-seconds-before-status-checks", "2", "results/comparison.json"],
        cwd=flow.root, env=env, capture_output=True, text=True, timeout=900,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    job_ids = SUBMITTED.findall(output)
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", output)
    assert done and len(job_ids) == int(done[-1][1]) >= 7, output[-3000:]  # every job was submitted
    assert {j: _squeue_state(j) for j in job_ids} == {j: "COMPLETED" for j in job_ids}
    run = json.loads((flow.root / "results/runs/lora/tiny/seed0/run.json").read_text())
    train_job = run["cluster"]["slurm_job_id"]
    assert train_job in job_ids
    assert _requested_gpus(train_job) == "1"
    assert run["cluster"]["slurm_gpus_on_node"] == "1"
