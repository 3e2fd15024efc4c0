"""GO/NO-GO gate: direction-aware decision, enforcement before training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunetrace.guard.gates import GO, NO_GO, GateClosed, GateSpec, decide, enforce_gate
from tunetrace.stages.gate import evaluate_gate


def test_higher_is_better_metric():
    """Accuracy 0.80 vs 0.70 is +14% and says GO at the 5% threshold; 0.72 says NO-GO."""
    assert decide("accuracy", 0.70, 0.80, 0.05, higher_is_better=True)["decision"] == GO
    assert decide("accuracy", 0.70, 0.72, 0.05, higher_is_better=True)["decision"] == NO_GO


def test_lower_is_better_metric():
    """For a loss, a lower pilot value is the improvement."""
    assert decide("loss", 1.0, 0.5, 0.05, higher_is_better=False)["relative_improvement"] == pytest.approx(0.5)
    assert decide("loss", 1.0, 1.5, 0.05, higher_is_better=False)["decision"] == NO_GO


def test_nonfinite_pilot_loss_is_no_go():
    """A pilot whose train loss went NaN never says GO."""
    result = decide("accuracy", 0.5, 0.9, 0.05, higher_is_better=True, pilot_loss=float("nan"))
    assert result["decision"] == NO_GO and "nan" in result["reasons"][0]


def write_gate_inputs(tmp_path: Path, pilot: float) -> tuple[Path, Path, Path]:
    metrics, run, baseline = tmp_path / "m.json", tmp_path / "r.json", tmp_path / "b.json"
    metrics.write_text(json.dumps({"method": "full", "task": "t", "seed": 0, "primary": pilot}))
    run.write_text(json.dumps({"global_steps": 20, "final_train_loss": 0.5}))
    baseline.write_text(
        json.dumps(
            {
                "primary_metric": "accuracy",
                "reference": "linear_probe",
                "higher_is_better": True,
                "baselines": {"majority": {"primary": 0.5}, "linear_probe": {"primary": 0.7}},
            }
        )
    )
    return metrics, run, baseline


def test_gate_file_fields(tmp_path: Path):
    """The gate file holds baseline, pilot, improvement, threshold, decision and reasons."""
    doc = evaluate_gate(
        GateSpec.from_dict({"enabled": True}), *write_gate_inputs(tmp_path, 0.8), tmp_path / "gate.json"
    )
    saved = json.loads((tmp_path / "gate.json").read_text())
    assert saved == doc
    assert (saved["baseline"], saved["pilot"]["value"], saved["threshold"], saved["decision"]) == (
        {"name": "linear_probe", "requested": "reference", "value": 0.7},
        0.8,
        0.05,
        GO,
    )
    assert saved["relative_improvement"] == pytest.approx(0.1 / 0.7)


def test_gate_against_majority_baseline(tmp_path: Path):
    """gate.baseline: majority compares with the majority class instead of the reference."""
    doc = evaluate_gate(
        GateSpec.from_dict({"baseline": "majority"}), *write_gate_inputs(tmp_path, 0.6), tmp_path / "gate.json"
    )
    assert doc["baseline"]["value"] == 0.5 and doc["decision"] == GO


def test_enforced_no_go_raises_with_numbers(tmp_path: Path):
    """enforce_gate stops on an enforced NO-GO, naming the gate file and the numbers."""
    evaluate_gate(GateSpec.from_dict({"threshold": 1e6}), *write_gate_inputs(tmp_path, 0.8), tmp_path / "gate.json")
    with pytest.raises(
        GateClosed,
        match=r"gate\.json says NO-GO: pilot accuracy 0\.8000 "
        r"vs baseline linear_probe 0\.7000",
    ):
        enforce_gate(str(tmp_path / "gate.json"))


def test_unenforced_no_go_passes(tmp_path: Path):
    """With enforce false a NO-GO is returned, not raised."""
    evaluate_gate(
        GateSpec.from_dict({"threshold": 1e6, "enforce": False}),
        *write_gate_inputs(tmp_path, 0.8),
        tmp_path / "gate.json",
    )
    assert enforce_gate([str(tmp_path / "gate.json")])[0]["decision"] == NO_GO


def test_gate_on_a_baseline_the_task_type_lacks_names_the_key(tmp_path: Path):
    """gate.baseline `majority` on a task type without that baseline (causal LM) stops naming the key and what
    exists."""
    metrics, run, baseline = write_gate_inputs(tmp_path, 0.8)
    baseline.write_text(
        json.dumps(
            {
                "primary_metric": "loss",
                "reference": "base_model",
                "higher_is_better": False,
                "baselines": {"base_model": {"primary": 2.5}},
            }
        )
    )
    with pytest.raises(ValueError, match=r"methods\.full\.gate\.baseline: 'majority'.*\['base_model'\]"):
        evaluate_gate(
            GateSpec.from_dict({"enabled": True, "baseline": "majority"}),
            metrics,
            run,
            baseline,
            tmp_path / "gate.json",
        )


@pytest.mark.parametrize("entry", ["base_model", "base_prompted"])
def test_gate_against_the_base_model(tmp_path: Path, entry: str):
    """gate.baseline base_model compares with the pretrained model's score (causal LM/distribution `base_model`,
    generative classification `base_prompted`), lower-is-better read in its direction."""
    metrics, run, baseline = write_gate_inputs(tmp_path, 2.0)
    baseline.write_text(
        json.dumps(
            {
                "primary_metric": "loss",
                "reference": entry,
                "higher_is_better": False,
                "baselines": {entry: {"primary": 2.5}, "uniform": {"primary": 1.0}},
            }
        )
    )
    doc = evaluate_gate(GateSpec.from_dict({"baseline": "base_model"}), metrics, run, baseline, tmp_path / "g.json")
    assert doc["baseline"] == {"name": entry, "requested": "base_model", "value": 2.5}
    assert doc["decision"] == GO and doc["relative_improvement"] == pytest.approx(0.2)


def test_gate_base_model_without_a_base_model_score_says_why(tmp_path: Path):
    """base_model on a baseline document without a base-model score (an untrained head) names the key and why."""
    metrics, run, baseline = write_gate_inputs(tmp_path, 0.8)
    with pytest.raises(ValueError, match=r"gate\.baseline: 'base_model'.*untrained head"):
        evaluate_gate(GateSpec.from_dict({"baseline": "base_model"}), metrics, run, baseline, tmp_path / "g.json")
