"""W&B tracking: offline writes a readable run directory, disabled writes nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import socket
from pathlib import Path

import pytest

from guard_helpers import MODEL, tiny_method, tiny_task
from tunetrace.config import TrackingSpec
from tunetrace.training.loop import train_run
from tunetrace.training.tracking import (
    WANDB_SUBDIR,
    read_offline_alerts,
    read_offline_history,
    read_offline_summary,
    record_tracking,
    run_identity,
    start_tracking,
)

FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def wandb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """W&B's own cache/config dirs in tmp, a fake API key in the environment."""
    home = tmp_path / "wandb_home"
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(home / var.lower()))
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    return home


def tracked_run(root: Path, mode: str) -> Path:
    task, data = tiny_task(root)
    method = tiny_method("lora_r4", max_steps=3, save_every_steps=None)
    run_dir = root / "run"
    with start_tracking(TrackingSpec.from_dict({"wandb_mode": mode}), method.name, task.name, 0, run_dir) as tracker:
        train_run(MODEL, task, method, 0, data, run_dir, log_sinks=[tracker.log])
    record_tracking(run_dir / "run.json", tracker)
    return run_dir


def test_run_identity_groups_and_tags():
    """Group is task-method; tags are method, task, seed plus configured tags."""
    ident = run_identity(TrackingSpec.from_dict({"tags": ["study1"]}), "lora_r8", "sst2", 3)
    assert ident["group"] == "sst2-lora_r8"
    assert ident["tags"] == ["lora_r8", "sst2", "seed3", "study1"]


def test_offline_run_dir_holds_logged_metrics(tmp_path: Path, wandb_env: Path):
    """Offline mode writes a W&B run file whose history holds every logged loss and grad-norm stat."""
    run_dir = tracked_run(tmp_path, "offline")
    files = sorted((run_dir / WANDB_SUBDIR / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1
    history = [row for row in read_offline_history(files[0]) if "train/loss" in row]
    logged = [json.loads(x) for x in (run_dir / "train_log.jsonl").read_text().splitlines() if '"loss"' in x]
    assert [row["train/loss"] for row in history] == pytest.approx([r["loss"] for r in logged])
    assert all("train/grad_norm_layer_max" in row for row in history)


def test_run_json_records_wandb_run_id(tmp_path: Path, wandb_env: Path):
    """run.json names the W&B mode and run id."""
    run_dir = tracked_run(tmp_path, "offline")
    tracking = json.loads((run_dir / "run.json").read_text())["tracking"]
    assert tracking["wandb_mode"] == "offline"
    assert tracking["wandb_run_id"] and tracking["wandb_run_id"] in tracking["wandb_dir"]


def test_api_key_never_written(tmp_path: Path, wandb_env: Path):
    """No file of the run or of W&B's directories contains the API key."""
    tracked_run(tmp_path, "offline")
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert FAKE_KEY.encode() not in path.read_bytes(), path


def test_disabled_writes_nothing_and_opens_no_socket(tmp_path: Path, wandb_env: Path, monkeypatch: pytest.MonkeyPatch):
    """Disabled mode writes no W&B file and never opens a network connection."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    run_dir = tracked_run(tmp_path, "disabled")
    assert not (run_dir / WANDB_SUBDIR).exists()
    assert not wandb_env.exists()
    tracking = json.loads((run_dir / "run.json").read_text())["tracking"]
    assert tracking == {"wandb_mode": "disabled", "wandb_run_id": None}


def test_lineage_record_carries_the_wandb_run_id(tmp_path: Path, wandb_env: Path, monkeypatch: pytest.MonkeyPatch):
    """The training job's lineage records name the W&B run id of its run.json, though the run has finished
    (and wandb.run is gone) by the time lineage is recorded."""
    from tunetrace.provenance.lineage import HashCache, JobInfo, build_records

    run_dir = tracked_run(tmp_path, "offline")
    monkeypatch.chdir(run_dir)
    monkeypatch.delenv("WANDB_RUN_ID", raising=False)
    job = JobInfo("train_run", {"seed": "0"}, [], [("metadata", "run.json"), ("train_log", "train_log.jsonl")], {})
    records = build_records(job, HashCache(None))
    tracked = json.loads(Path("run.json").read_text())["tracking"]["wandb_run_id"]
    assert tracked and {r["wandb_run_id"] for r in records.values()} == {tracked}


@pytest.mark.workflow
def test_two_rank_launch_has_one_wandb_run_that_validation_updates(tmp_path: Path, wandb_env: Path):
    """Of 2 launched gloo ranks only rank 0 starts W&B: one offline run with every logged loss; validate's update
    of the same run id adds the eval metrics, verdict, flag codes, lineage id and one alert per critical flag."""
    from scale_helpers import make_tiny_bert, tiny_bert_config
    from test_accelerate import _job
    from tunetrace.config import validate_config
    from tunetrace.stages.validate import update_tracked_run
    from tunetrace.training.launch import run_training

    config = validate_config(tiny_bert_config(make_tiny_bert(tmp_path / "bert"), steps=4, save_every=2))
    config["methods"]["full"]["processes"] = 2
    job = dataclasses.replace(_job(tmp_path, config), tracking={"wandb_mode": "offline"})
    run_training(job, threads=2)
    run_dir = Path(job.run_dir)
    runs = sorted((run_dir / WANDB_SUBDIR / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    run_id = json.loads((run_dir / "run.json").read_text())["tracking"]["wandb_run_id"]
    history = [row for row in read_offline_history(runs[0] / f"run-{run_id}.wandb") if "train/loss" in row]
    logged = [json.loads(x) for x in (run_dir / "train_log.jsonl").read_text().splitlines() if '"loss"' in x]
    assert [row["train/loss"] for row in history] == pytest.approx([r["loss"] for r in logged]) and len(logged) == 4

    flags = [
        {"severity": "critical", "code": "hash_mismatch", "message": "checkpoint-2 differs", "files": []},
        {"severity": "warning", "code": "metric_above_range", "message": "high", "files": []},
    ]
    document = {
        "method": "full",
        "task": "tiny",
        "seed": 0,
        "passed": False,
        "critical": 1,
        "warning": 1,
        "flags": flags,
    }
    update_tracked_run(run_dir, {"primary": 0.75, "primary_metric": "accuracy", "accuracy": 0.75}, document)
    updates = sorted(set((run_dir / WANDB_SUBDIR / "wandb").glob("offline-run-*")) - set(runs))
    assert len(updates) == 1 and (updates[0] / f"run-{run_id}.wandb").is_file()  # the same run id, for wandb sync
    summary = read_offline_summary(updates[0] / f"run-{run_id}.wandb")
    assert summary["eval/accuracy"] == 0.75 and summary["validation/passed"] is False
    assert summary["validation/flag_codes"] == ["hash_mismatch", "metric_above_range"]
    assert summary["lineage_id"] == hashlib.sha256((run_dir / "run.json").read_bytes()).hexdigest()
    assert read_offline_alerts(updates[0] / f"run-{run_id}.wandb") == ["full/tiny/seed0: hash_mismatch"]
