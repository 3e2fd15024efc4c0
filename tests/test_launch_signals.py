"""A training job as a process: one trainer per run (lock), death with its parent, Ctrl-C, log lines."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import torch

from conftest import REPO, Workflow
from scale_helpers import load_weights, make_tiny_bert, tiny_bert_config
from tunetrace.config import MethodSpec, TaskSpec, validate_config
from tunetrace.provenance.lineage import SIDECAR_SUFFIX
from tunetrace.training import checkpoints as C
from tunetrace.training import jobcontrol
from tunetrace.training.launch import TrainingJob, run_training
from tunetrace.training.loop import training_arguments
from tunetrace.training.runlock import LOCK_FILE, RunLocked, run_lock

RUN = "results/runs/full/tiny/seed0"
STATE = "results/checkpoints/full/tiny/seed0"
ENV = {**os.environ, "PYTHONPATH": str(REPO / "pkg"), "WANDB_MODE": "disabled"}
HOLD_LOCK = (
    "import sys, time\nfrom tunetrace.training.runlock import run_lock\n"
    "with run_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(120)\n"
)


def _hold_lock(state: Path) -> subprocess.Popen:
    """Another process holding the run's lock (returns once it holds it)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(state)], env=ENV, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_trainer_of_a_run_stops_naming_the_live_holder(tmp_path: Path) -> None:
    """While another process holds the run, run_training refuses at once, naming pid, host and what to do,
    and leaves the resume directory untouched."""
    config = validate_config(tiny_bert_config(tmp_path / "bert"))
    state = tmp_path / "state"
    holder = _hold_lock(state)
    try:
        job = TrainingJob(
            model=config["model"],
            task_name="tiny",
            task=config["tasks"]["tiny"],
            method_name="full",
            method=config["methods"]["full"],
            seed=0,
            data_dir=str(tmp_path / "data"),
            run_dir=str(tmp_path / "run"),
            resume_dir=str(state),
        )
        with pytest.raises(RunLocked, match=f"pid {holder.pid} on host {socket.gethostname()}") as err:
            run_training(job)
    finally:
        holder.kill()
        holder.wait()
    assert "Wait for that job to finish, or stop it" in str(err.value)
    assert sorted(p.name for p in state.iterdir()) == [LOCK_FILE]


def test_stale_lock_of_a_dead_process_is_taken_over_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A lock file left by a holder killed with SIGKILL is taken over; the log names the dead holder."""
    state = tmp_path / "state"
    holder = _hold_lock(state)
    holder.kill()
    holder.wait()
    assert json.loads((state / LOCK_FILE).read_text())["pid"] == holder.pid  # its record is still there
    with caplog.at_level(logging.WARNING, logger="tunetrace.training.runlock"), run_lock(state) as mine:
        assert json.loads((state / LOCK_FILE).read_text())["pid"] == os.getpid() == mine["pid"]
    assert f"took over a stale lock: its holder (pid {holder.pid}" in caplog.text


def _alive(proc: psutil.Process) -> bool:
    """Running and not a zombie (an orphan's exit status waits for whoever adopted it)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gone_within(proc: psutil.Process, seconds: float) -> float:
    """Seconds until `proc` ended; fails when it still runs after `seconds`."""
    started = time.monotonic()
    while _alive(proc) and time.monotonic() - started < seconds:
        time.sleep(0.05)
    assert not _alive(proc), f"pid {proc.pid} still runs {seconds} s later"
    return time.monotonic() - started


# a job that checks for a stop between "steps", as stop_callback does between training steps
CHILD = (
    "import time\nfrom tunetrace.training import jobcontrol\njobcontrol.run_as_job(grace_s=30)\n"
    "print('ready', flush=True)\nwhile True:\n    time.sleep(0.05)\n    jobcontrol.raise_if_stopped('here')\n"
)
PARENT = "import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', sys.argv[1]])\ntime.sleep(120)\n"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
def test_job_dies_when_its_parent_is_killed(tmp_path: Path) -> None:
    """kill -9 of a job's parent: the job gets SIGTERM from the kernel and stops at its next step check."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, CHILD], env=ENV, stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().strip() == "ready"
    [job] = psutil.Process(parent.pid).children()
    parent.kill()
    parent.wait()
    assert _gone_within(job, 10) < 5  # the step check ended it, not the 30 s grace


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_bar_only_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, terminal: bool) -> None:
    """The Trainer's tqdm bar is on for a terminal and off when stderr is a file (then lines are logged)."""
    config = validate_config(tiny_bert_config(tmp_path))
    monkeypatch.setattr(jobcontrol, "stderr_is_terminal", lambda: terminal)
    args = training_arguments(
        MethodSpec.from_dict("full", config["methods"]["full"]),
        TaskSpec.from_dict("tiny", config["tasks"]["tiny"]),
        0,
        tmp_path,
        [],
    )
    assert args.disable_tqdm is not terminal


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("models") / "tiny_bert")


def _start(flow: Workflow, *args: str) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(flow.root),
        "--configfile",
        str(flow.root / "config.yaml"),
        "--cores",
        "2",
        "--workflow-profile",
        "none",
        *args,
    ]
    return subprocess.Popen(
        cmd, cwd=flow.root, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )


def _trainer_after(proc: subprocess.Popen, flow: Workflow, step: int) -> psutil.Process:
    """The train_run job of snakemake `proc`, once checkpoint `step` is complete."""
    marker = flow.root / STATE / f"checkpoint-{step}" / C.COMPLETE_MARKER
    deadline = time.monotonic() + 240
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    jobs = [p for p in psutil.Process(proc.pid).children(recursive=True) if "train_run.py" in " ".join(p.cmdline())]
    assert len(jobs) == 1 and not (flow.root / RUN / "run.json").exists(), "training ended before the test's signal"
    return jobs[0]


@pytest.mark.workflow
def test_kill_9_of_snakemake_ends_the_trainer_and_the_rerun_resumes_bitwise(tmp_path: Path, tiny_bert: Path) -> None:
    """A finished run is forced to retrain and snakemake is killed with SIGKILL mid-training: the trainer is
    gone within seconds, no lineage record is left beside the removed outputs, and after --unlock the rerun
    resumes from the last checkpoint to exactly the weights of the first, uninterrupted run."""
    flow = Workflow(tmp_path, tiny_bert_config(tiny_bert, steps=30, save_every=4))
    flow.run(f"{RUN}/run.json")
    straight = load_weights(flow.root / RUN / "final")
    proc = _start(flow, "--forcerun", "train_run", f"{RUN}/run.json")
    job = _trainer_after(proc, flow, 8)
    proc.kill()
    proc.wait()
    _gone_within(job, 15)  # a step, the exception and interpreter exit: ~0.5 s idle, 4-5 s at load 10 on 2 cores
    log = (flow.root / "logs/train_run/full/tiny/seed0.log").read_text()
    assert "TrainingStopped: SIGTERM received" in log  # "(the parent process N is gone)" too, unless the
    # killed parent's last threads outlive the 1 s look (the trainer stops on the signal either way)
    orphans = [
        p
        for p in (flow.root / "results").rglob(f"*{SIDECAR_SUFFIX}")
        if not Path(str(p)[: -len(SIDECAR_SUFFIX)]).exists()
    ]
    assert orphans == []
    flow.run("--unlock")
    flow.run("--rerun-incomplete", f"{RUN}/run.json")
    assert json.loads((flow.root / RUN / "run.json").read_text())["resumed_from_step"] >= 8
    resumed = load_weights(flow.root / RUN / "final")
    assert all(torch.equal(straight[k], resumed[k]) for k in straight) and sorted(straight) == sorted(resumed)


@pytest.mark.workflow
def test_ctrl_c_stops_training_within_seconds_and_fails_the_job(tmp_path: Path, tiny_bert: Path) -> None:
    """SIGINT to snakemake's process group (Ctrl-C): the trainer stops at the next step, the job and snakemake
    exit non-zero, and the job's log has one line per logging step and no progress-bar carriage returns."""
    flow = Workflow(tmp_path, tiny_bert_config(tiny_bert, steps=60, save_every=4))
    proc = _start(flow, f"{RUN}/run.json")
    job = _trainer_after(proc, flow, 4)
    os.killpg(proc.pid, signal.SIGINT)
    _gone_within(job, 15)  # a step, the exception and interpreter exit: ~0.5 s idle, 4-5 s at load 10 on 2 cores
    assert proc.wait(timeout=60) != 0
    log = (flow.root / "logs/train_run/full/tiny/seed0.log").read_text()
    assert "SIGINT received: stopping training" in log and "TrainingStopped: SIGINT received" in log
    assert "\r" not in log and "step 4/60: loss=" in log
