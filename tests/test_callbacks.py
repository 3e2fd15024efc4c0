"""The training monitor: per-log-step records in train_log.jsonl, checksums of checkpoints."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from guard_helpers import MODEL, tiny_method, tiny_task
from tunetrace.artifacts import CHECKSUMS
from tunetrace.training.loop import train_run
from tunetrace.training.monitor import layer_grad_norms, layer_of, norm_stats


@pytest.fixture(scope="module")
def monitored_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("monitor")
    task, data = tiny_task(root)
    train_run(MODEL, task, tiny_method("full", max_steps=4, logging_steps=2), 0, data, root / "run")
    return root / "run"


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]


def test_layer_of_groups_transformer_blocks():
    """Parameters of block i map to layer_i; others to their top module."""
    assert layer_of("bert.encoder.layer.3.attention.self.query.weight") == "layer_3"
    assert layer_of("base_model.model.bert.encoder.layer.11.output.dense.lora_A.default.weight") == "layer_11"
    assert layer_of("classifier.weight") == "classifier"


def test_layer_grad_norms_known_values():
    """Per-layer norm is the L2 norm over all gradients of that layer."""
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])
    norms = layer_grad_norms(
        [("enc.layer.0.a", a), ("enc.layer.0.b", b), ("head.w", torch.nn.Parameter(torch.ones(1)))]
    )
    assert norms == {"layer_0": pytest.approx(5.0)}
    assert norm_stats({"x": 1.0, "y": 3.0}, scale=2.0)["grad_norm_layer_mean"] == pytest.approx(4.0)


def test_one_record_per_log_step(monitored_run: Path):
    """Log steps 1 (first step), 2 and 4 each give exactly one training record."""
    steps = [r["step"] for r in records(monitored_run) if "loss" in r]
    assert steps == [1, 2, 4]


def test_records_carry_monitor_fields(monitored_run: Path):
    """Each training record has loss, lr, grad norms with layer stats, timing and memory."""
    for record in (r for r in records(monitored_run) if "loss" in r):
        for key in (
            "learning_rate",
            "grad_norm",
            "grad_norm_layer_mean",
            "grad_norm_layer_std",
            "grad_norm_layer_min",
            "grad_norm_layer_max",
            "cpu_rss_mb",
        ):
            assert math.isfinite(record[key]), key
        assert record["grad_norm_layer_min"] <= record["grad_norm_layer_mean"] <= record["grad_norm_layer_max"]
    assert all("step_time_s" in r and "samples_per_s" in r for r in records(monitored_run)[1:] if "loss" in r)


def test_layer_norms_rescale_to_preclip_total(monitored_run: Path):
    """The layer norms, rescaled after clipping, recombine to the Trainer's pre-clip total norm."""
    record = next(r for r in records(monitored_run) if "loss" in r)
    assert record["grad_norm_layer_max"] <= record["grad_norm"] * (1 + 1e-4)


def test_checkpoints_and_final_carry_checksums(monitored_run: Path):
    """Every checkpoint and the final model list the sha256 of their files."""
    dirs = [*sorted((monitored_run / "checkpoints").glob("checkpoint-*")), monitored_run / "final"]
    assert len(dirs) == 3
    for directory in dirs:
        sums = json.loads((directory / CHECKSUMS).read_text())
        assert "model.safetensors" in sums
