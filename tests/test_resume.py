"""Resume after preemption: complete-checkpoint detection and kill-and-resume of a real workflow job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from conftest import REPO, Workflow
from scale_helpers import load_weights, loss_curve, make_tiny_bert, max_weight_difference, tiny_bert_config
from tunetrace.training import checkpoints as C

RUN = "results/runs/full/tiny/seed0"
STATE = "results/checkpoints/full/tiny/seed0"


def _fake_checkpoint(root: Path, step: int, complete: bool) -> Path:
    path = root / f"checkpoint-{step}"
    path.mkdir(parents=True)
    save_file({"w": torch.zeros(4)}, str(path / "model.safetensors"))  # verified before a resume
    if complete:
        (path / C.TRAINER_STATE).write_text("{}")
        C.write_marker(path, {"step": step})
    return path


def test_half_written_checkpoint_is_never_resumed_from(tmp_path: Path) -> None:
    """A checkpoint without the completion marker is removed; the newest complete one is chosen."""
    state = tmp_path / "state"
    _fake_checkpoint(state, 2, complete=True)
    _fake_checkpoint(state, 4, complete=True)
    _fake_checkpoint(state, 6, complete=False)
    C.write_json(state / C.FINGERPRINT, {"fingerprint": "f"})
    assert C.prepare_state_dir(state, "f") == state / "checkpoint-4"
    assert not (state / "checkpoint-6").exists()


def test_resume_state_of_other_inputs_is_discarded(tmp_path: Path) -> None:
    """A resume directory written for a different config fingerprint is wiped, never resumed from."""
    state = tmp_path / "state"
    _fake_checkpoint(state, 2, complete=True)
    C.write_json(state / C.FINGERPRINT, {"fingerprint": "old"})
    assert C.prepare_state_dir(state, "new") is None
    assert not (state / "checkpoint-2").exists()


def test_truncate_log_drops_records_after_the_checkpoint(tmp_path: Path) -> None:
    """Log records after the resumed step, and a line cut off by the kill, are dropped."""
    log = tmp_path / "train_log.jsonl"
    log.write_text('{"step": 1, "loss": 1}\n{"step": 2, "loss": 1}\n{"step": 3, "loss": 1}\n{"step": 4, "lo')
    assert C.truncate_log(log, 2) == 2
    assert [json.loads(x)["step"] for x in log.read_text().splitlines()] == [1, 2]


def test_wall_time_sums_the_segments_a_run_was_trained_in() -> None:
    """run.json's train_wall_time_s is the sum over the checkpoint's recorded segments and this call's; a checkpoint
    without segments (older) gives a segment of unknown time, and the sum says it is incomplete."""
    from tunetrace.training.loop import prior_segments, segment, wall_time_summary

    first = segment(0, 8, 2.5)
    summary = wall_time_summary([*prior_segments({"step": 8, "segments": [first]}, 8), segment(8, 12, 1.25)])
    assert summary["train_wall_time_s"] == 3.75 and summary["train_wall_time_complete"]
    assert [(s["from_step"], s["to_step"]) for s in summary["train_segments"]] == [(0, 8), (8, 12)]
    older = wall_time_summary([*prior_segments({"step": 8}, 8), segment(8, 12, 1.25)])
    assert older["train_wall_time_s"] == 1.25 and not older["train_wall_time_complete"]
    assert prior_segments({}, 0) == []


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("models") / "tiny_bert")


def _snakemake(flow: Workflow, *args: str) -> list[str]:
    return [
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


def _run_and_kill(flow: Workflow, after_step: int) -> None:
    """Start the training job and SIGKILL snakemake and the job once checkpoint `after_step` is complete."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "pkg"), "WANDB_MODE": "disabled"}
    proc = subprocess.Popen(
        _snakemake(flow, "--rerun-incomplete", f"{RUN}/run.json"),
        cwd=flow.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    marker = flow.root / STATE / f"checkpoint-{after_step}" / C.COMPLETE_MARKER
    deadline = time.monotonic() + 240
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (flow.root / RUN / "run.json").exists(), "training finished before it could be killed"
    flow.run("--unlock")


@pytest.mark.workflow
def test_training_killed_twice_resumes_to_the_uninterrupted_result(tmp_path: Path, tiny_bert: Path) -> None:
    """SIGKILL twice mid-training, rerun: same final weights and loss curve as an uninterrupted run."""
    config = tiny_bert_config(tiny_bert, steps=40, save_every=4)
    straight = Workflow(tmp_path / "straight", config)
    straight.run(f"{RUN}/run.json")
    killed = Workflow(tmp_path / "killed", config)
    _run_and_kill(killed, after_step=8)
    first_resume = C.last_complete_checkpoint(killed.root / STATE)
    _run_and_kill(killed, after_step=24)
    second_resume = C.last_complete_checkpoint(killed.root / STATE)
    killed.run("--rerun-incomplete", f"{RUN}/run.json")

    assert C.checkpoint_step(first_resume) >= 8 and C.checkpoint_step(second_resume) >= 24
    metadata = json.loads((killed.root / RUN / "run.json").read_text())
    assert metadata["resumed_from_step"] == C.checkpoint_step(second_resume)
    difference = max_weight_difference(
        load_weights(straight.root / RUN / "final"), load_weights(killed.root / RUN / "final")
    )
    assert difference <= 1e-6, f"final weights differ by {difference}"
    straight_curve = loss_curve(straight.root / RUN / "train_log.jsonl")
    killed_curve = loss_curve(killed.root / RUN / "train_log.jsonl")
    assert [s for s, _ in killed_curve] == list(range(1, 41))
    assert max(abs(a - b) for (_, a), (_, b) in zip(straight_curve, killed_curve, strict=True)) <= 1e-6
    reference = json.loads((straight.root / RUN / "run.json").read_text())
    assert abs(metadata["final_train_loss"] - reference["final_train_loss"]) <= 1e-6
    assert not (killed.root / STATE).exists(), "resume state must be removed once the run is complete"
    segments = metadata["train_segments"]
    assert [(s["from_step"], s["to_step"]) for s in segments] == [
        (0, C.checkpoint_step(first_resume)),
        (C.checkpoint_step(first_resume), C.checkpoint_step(second_resume)),
        (C.checkpoint_step(second_resume), 40),
    ]
    assert all(s["wall_time_s"] > 0 for s in segments) and metadata["train_wall_time_complete"]
    assert metadata["train_wall_time_s"] == pytest.approx(sum(s["wall_time_s"] for s in segments))
    assert [(s["from_step"], s["to_step"]) for s in reference["train_segments"]] == [(0, 40)]
