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
from tunetrace.cluster.requests import LOCAL_RULES

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


def _job_fields(job_id: str) -> dict[str, str]:
    """Key=value fields of `scontrol show job` (finished jobs stay listed: MinJobAge is a day)."""
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def _requested_gpus(job_id: str) -> str:
    match = re.search(r"gres:gpu:(\d+)", _job_fields(job_id).get("TresPerJob", ""))
    return match.group(1) if match else ""


def _tunetrace(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO / "pkg")}
    return subprocess.run(
        [sys.executable, "-m", "tunetrace.cli", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def test_installed_profile_name_resolves(tmp_path: Path) -> None:
    """profiles/install.sh makes `--profile slurm` resolve to profiles/slurm from any directory."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    subprocess.run(["bash", str(REPO / "profiles" / "install.sh"), "slurm"], check=True, env=env, capture_output=True)
    link = tmp_path / "xdg" / "snakemake" / "slurm"
    assert link.resolve() == (REPO / "profiles" / "slurm").resolve()
    assert (link / "config.yaml").is_file()


def _gpu_and_cpu_study(tmp_path: Path) -> Workflow:
    """The tiny BERT study with a GPU method (LoRA, one GPU) and a CPU-only one (full fine-tuning)."""
    config = tiny_bert_config(make_tiny_bert(tmp_path / "tiny_bert"), steps=4, save_every=2)
    config["methods"] = {
        "lora": {
            **config["methods"]["full"],
            "type": "lora",
            "lora": {"r": 4, "alpha": 8},
            "resources": {"gpus": 1, "cpus": 1},
        },
        "full": {**config["methods"]["full"], "resources": {"cpus": 1}},
    }
    return Workflow(tmp_path / "study", config)


def test_pipeline_runs_through_slurm_with_gpu_and_cpu_methods(slurm_cluster: None, tmp_path: Path) -> None:
    """`snakemake --profile slurm results/comparison.json` with the shipped profile (no status-command or account
    flag) completes every job that needs a node as a Slurm job and the light ones (LOCAL_RULES) beside snakemake;
    GPUs go to the GPU method's train/verify jobs (and the baseline) only, never to the CPU-only method's."""
    flow = _gpu_and_cpu_study(tmp_path)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "pkg"),
        "WANDB_MODE": "disabled",
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
    }
    env.pop("SLURM_CONF", None)
    subprocess.run(["bash", str(REPO / "profiles" / "install.sh"), "slurm"], check=True, env=env, capture_output=True)
    proc = subprocess.run(  # the first status check after 2 s instead of 40 s: only to keep the test short
        [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(REPO / "Snakefile"),
            "--profile",
            "slurm",
            "--slurm-init-seconds-before-status-checks",
            "2",
            "results/comparison.json",
            "--configfile",
            "config.yaml",
        ],
        cwd=flow.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert "workflow specific profile" in output  # profiles/default is loaded, its local keys are not
    job_ids = SUBMITTED.findall(output)
    local = re.findall(r"^local(?:rule|checkpoint) (\w+):", output, re.MULTILINE)
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", output)
    # every job that needs a node was submitted, the light ones ran beside snakemake
    assert done and len(job_ids) + len(local) == int(done[-1][1]) and len(job_ids) >= 8, output[-3000:]
    assert {"compare_runs", "evaluate_run", "prepare_data"} <= set(local) <= set(LOCAL_RULES), local
    assert {j: _squeue_state(j) for j in job_ids} == {j: "COMPLETED" for j in job_ids}
    gpus = {}
    for job in job_ids:
        comment = _job_fields(job)["Comment"]  # rule_<rule>_wildcards_<method>_<task>_<seed>
        rule = re.sub(r"_wildcards_.*", "", comment.removeprefix("rule_"))
        method = "lora" if "_wildcards_lora" in comment else "full" if "_wildcards_full" in comment else "-"
        gpus.setdefault((rule, method), set()).add(_requested_gpus(job))
    # the GPU method's training and inference jobs (placed on the GPU), the study's baseline; none for the CPU method
    for key in [
        ("train_run", "lora"),
        ("verify_merge", "lora"),
        ("evaluate_baseline", "-"),
        ("merge_adapter", "lora"),
        ("validate_run", "lora"),
    ]:
        assert gpus[key] == {"1"}, (key, gpus)
    assert all(v in ({""}, {"1"}) for v in gpus.values()), gpus
    assert not set(LOCAL_RULES) & {rule for rule, _ in gpus}, gpus
    for key in [("train_run", "full"), ("validate_run", "full")]:
        assert gpus[key] == {""}, (key, gpus)
    run = json.loads((flow.root / "results/runs/lora/tiny/seed0/run.json").read_text())
    assert run["cluster"]["slurm_job_id"] in job_ids and run["cluster"]["slurm_gpus_on_node"] == "1"


def test_doctor_against_the_running_cluster(slurm_cluster: None, tmp_path: Path) -> None:
    """`tunetrace doctor --profile slurm` reads the live cluster: the tiny study fits (exit 0); an 8B-parameter
    model's requests exceed the node's real memory (exit 1, naming the rule and the key to set)."""
    flow = _gpu_and_cpu_study(tmp_path)
    node_mb = int(open("/proc/meminfo").read().split()[1]) // 1024  # start_cluster.sh declares MemTotal
    ok = _tunetrace(flow.root, "doctor", "--profile", str(REPO / "profiles" / "slurm"), "--configfile", "config.yaml")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "accounting off" in ok.stdout and "every request fits the cluster" in ok.stdout
    assert re.search(rf"debug\*\s+up\s+1\s+\d+\s+{node_mb}\s", ok.stdout), ok.stdout
    flow.config["resources"] = {"model_parameters": 8_000_000_000}
    flow.write_config()
    bad = _tunetrace(flow.root, "doctor", "--profile", str(REPO / "profiles" / "slurm"), "--configfile", "config.yaml")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert re.search(
        rf"ERROR: verify_merge \(method lora\) requests \d+ MB of memory; the largest node of "
        rf"partition 'debug' has {node_mb}: set resources.verify_merge.mem_mb",
        bad.stdout,
    ), bad.stdout
