"""Red flags: pure trend functions, and fault injection on real tiny runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from guard_helpers import MODEL, tiny_method, tiny_task
from tunetrace.guard.validation import (
    ValidationFailed,
    ValidationSpec,
    check_loss,
    check_representations,
    enforce_strict,
    oscillation,
    relative_trend,
    theil_sen_slope,
    validate_run,
)
from tunetrace.training.loop import train_run

SPEC = ValidationSpec.from_dict({"min_log_points": 4})


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory):
    """A prepared tiny task and one clean full fine-tuning run (4 steps, checkpoints at 2 and 4)."""
    root = tmp_path_factory.mktemp("validation")
    task, data = tiny_task(root)
    method = tiny_method("full", max_steps=4, save_every_steps=2)
    train_run(MODEL, task, method, 0, data, root / "clean")
    return root, task, data, method


def run_validation(study, run_dir: Path, expected_range=None, metrics=None, reps=None, spec=SPEC) -> dict:
    root, task, data, method = study
    metrics_path = run_dir / "metrics.json"
    metrics_path.write_text(json.dumps(metrics or {"primary": 0.75, "primary_metric": "accuracy", "loss": 0.69}))
    return validate_run(MODEL, task, method, spec, expected_range, run_dir, metrics_path, data,
                        run_dir / "validation.json", run_dir / "validation.txt", seed=0, representations_dir=reps)


def copy_run(study, name: str) -> Path:
    root = study[0]
    shutil.copytree(root / "clean", root / name)
    return root / name


def codes(document: dict, severity: str = "critical") -> set[str]:
    return {f["code"] for f in document["flags"] if f["severity"] == severity}


def test_theil_sen_ignores_one_outlier():
    """A single spike does not move the robust slope."""
    x = np.arange(10.0)
    y = 2 * x
    y[5] = 1000.0
    assert theil_sen_slope(x, y) == pytest.approx(2.0)


def test_relative_trend_sign():
    """A falling loss has a negative relative trend, a rising one a positive trend."""
    x = np.arange(20.0)
    assert relative_trend(x, 1.0 - 0.02 * x) < 0 < relative_trend(x, 1.0 + 0.02 * x)


def test_oscillation_detects_zigzag():
    """An alternating loss has a large swing and flips sign at every point; a smooth decay does not."""
    zigzag = [1.0, 0.3] * 10
    swing, flips = oscillation(zigzag, 5)
    assert swing > 0.25 and flips == 1.0
    assert oscillation(np.linspace(1, 0.5, 20), 5)[0] < 0.05


def test_rising_loss_is_critical():
    """A loss that climbs over the run raises loss_increasing."""
    records = [{"step": s, "loss": 0.5 + 0.05 * s} for s in range(1, 11)]
    assert {f["code"] for f in check_loss(records, SPEC, 2, "log")} == {"loss_increasing"}


def test_final_loss_limit_is_a_classifier_chance_level_or_the_configured_one():
    """A falling loss ending at 3.0 nats: high for a 2-label classifier (limit 1.5 ln 2); not checked for a
    language-model loss (no chance level) unless validation.max_final_train_loss is set."""
    import dataclasses

    records = [{"step": s, "loss": 4.0 - 0.1 * s} for s in range(1, 11)]
    assert {f["code"] for f in check_loss(records, SPEC, 2, "log")} == {"final_loss_high"}
    assert check_loss(records, SPEC, None, "log") == []
    capped = dataclasses.replace(SPEC, max_final_train_loss=2.5)
    assert {f["code"] for f in check_loss(records, capped, None, "log")} == {"final_loss_high"}


def test_clean_run_has_no_critical_file_flags(study):
    """The clean run's checkpoints and final model pass the file and load checks."""
    document = run_validation(study, study[0] / "clean")
    assert not codes(document) & {"missing", "file_missing", "file_empty", "hash_mismatch", "file_unloadable",
                                  "checkpoint_unloadable", "nonfinite_logits", "final_reload_mismatch"}
    assert len(document["checked"]["checkpoints"]) == 2


def test_absurd_learning_rate_is_critical(study):
    """Learning rate 10 without clipping gives NaN or exploding loss/gradients and a critical flag."""
    root, task, data, _ = study
    method = tiny_method("full", max_steps=4, save_every_steps=None, learning_rate=10.0, max_grad_norm=0.0)
    train_run(MODEL, task, method, 0, data, root / "absurd")
    document = run_validation(study, root / "absurd")
    assert codes(document) & {"nonfinite_loss", "final_loss_high", "grad_norm_high",
                              "nonfinite_grad_norm", "nonfinite_logits"}
    assert not document["passed"]


def test_truncated_checkpoint_is_named(study):
    """A truncated checkpoint weight file is flagged with its file name."""
    run_dir = copy_run(study, "truncated")
    weights = run_dir / "checkpoints" / "checkpoint-2" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    document = run_validation(study, run_dir)
    hits = [f for f in document["flags"] if f["code"] == "hash_mismatch"]
    assert [f["files"] for f in hits] == [[str(weights)]]


def test_unreachable_expected_range_is_critical(study):
    """A primary metric below tasks.<task>.expected_range.min raises metric_below_range."""
    document = run_validation(study, study[0] / "clean", expected_range={"min": 0.99, "max": None})
    assert "metric_below_range" in codes(document)


def test_metric_above_range_is_a_warning(study):
    """A primary metric above expected_range.max is a warning, not critical."""
    document = run_validation(study, study[0] / "clean", expected_range={"min": None, "max": 0.5})
    assert "metric_above_range" in codes(document, "warning") and "metric_above_range" not in codes(document)


def test_corrupted_representation_file_is_named(tmp_path: Path):
    """A representation layer file whose bytes changed is flagged with its path."""
    import torch
    from safetensors.torch import save_file

    from tunetrace.fileio import sha256_file

    step = tmp_path / "step_000004"
    step.mkdir()
    save_file({"hidden": torch.ones(4, 8)}, str(step / "layer_0.safetensors"))
    meta = {"layers": [{"file": "layer_0.safetensors", "sha256": sha256_file(step / "layer_0.safetensors")}]}
    (step / "metadata.json").write_text(json.dumps(meta))
    assert check_representations(tmp_path) == []
    data = bytearray((step / "layer_0.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (step / "layer_0.safetensors").write_bytes(bytes(data))
    flags = check_representations(tmp_path)
    assert [(f["code"], f["files"]) for f in flags] == [("hash_mismatch", [str(step / "layer_0.safetensors")])]


def test_strict_lists_flags_and_files(tmp_path: Path):
    """enforce_strict raises with the flag and its file; without strict it passes."""
    doc = {"method": "full", "task": "t", "seed": 0, "passed": False, "critical": 1, "warning": 0,
           "flags": [{"severity": "critical", "code": "nonfinite_loss",
                      "message": "loss is nan", "files": ["a/train_log.jsonl"]}]}
    path = tmp_path / "seed0.json"
    path.write_text(json.dumps(doc))
    enforce_strict([str(path)], strict=False)
    with pytest.raises(ValidationFailed, match=r"nonfinite_loss.*a/train_log.jsonl"):
        enforce_strict([str(path)], strict=True)
