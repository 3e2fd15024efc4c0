"""Red flags: pure trend functions, and fault injection on real tiny runs."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from guard_helpers import MODEL, tiny_method, tiny_task
from tunetrace.config import ValidationSpec
from tunetrace.guard.validation import (
    ValidationFailed,
    apply_severity,
    check_baselines,
    check_loss,
    check_loss_moved,
    check_representations,
    check_sizing,
    check_weights,
    enforce_strict,
    flag,
    oscillation,
    relative_trend,
    theil_sen_slope,
)
from tunetrace.stages.validate import validate_run
from tunetrace.training.loop import train_run
from tunetrace.training.sizing import plan

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
    return validate_run(
        MODEL,
        task,
        method,
        spec,
        expected_range,
        run_dir,
        metrics_path,
        data,
        run_dir / "validation.json",
        run_dir / "validation.txt",
        seed=0,
        representations_dir=reps,
    )


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
    assert not codes(document) & {
        "missing",
        "file_missing",
        "file_empty",
        "hash_mismatch",
        "file_unloadable",
        "checkpoint_unloadable",
        "nonfinite_logits",
        "final_reload_mismatch",
    }
    assert len(document["checked"]["checkpoints"]) == 2


def test_absurd_learning_rate_is_critical(study):
    """Learning rate 10 without clipping gives NaN or exploding loss/gradients and a critical flag."""
    root, task, data, _ = study
    method = tiny_method("full", max_steps=4, save_every_steps=None, learning_rate=10.0, max_grad_norm=0.0)
    train_run(MODEL, task, method, 0, data, root / "absurd")
    document = run_validation(study, root / "absurd")
    assert codes(document) & {
        "nonfinite_loss",
        "final_loss_high",
        "grad_norm_high",
        "nonfinite_grad_norm",
        "nonfinite_logits",
    }
    assert not document["passed"]


def test_truncated_checkpoint_is_named(study):
    """A truncated checkpoint weight file is flagged with its file name."""
    run_dir = copy_run(study, "truncated")
    weights = run_dir / "checkpoints" / "checkpoint-2" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    document = run_validation(study, run_dir)
    hits = [f for f in document["flags"] if f["code"] == "hash_mismatch"]
    assert [f["files"] for f in hits] == [[str(weights)]]


def test_each_checkpoint_file_is_hashed_once_per_validation(study, monkeypatch: pytest.MonkeyPatch):
    """The job's input check (against the lineage records) and the checksum check read each file's bytes once."""
    from collections import Counter

    import tunetrace.guard.validation as validation_module
    import tunetrace.provenance.lineage as lineage_module
    from tunetrace.provenance.integrity import check_inputs
    from tunetrace.provenance.lineage import HashCache, JobInfo, build_records, write_records

    run_dir = copy_run(study, "hashed")
    monkeypatch.chdir(run_dir)
    outputs = [("checkpoints", "checkpoints"), ("final", "final")]
    write_records(build_records(JobInfo("train_run", {}, [], outputs, {}), HashCache(None)))
    calls: Counter[str] = Counter()

    def counting(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls[str(Path(path).resolve())] += 1
        return real(path, *args, **kwargs)

    real = validation_module.sha256_file
    monkeypatch.setattr(validation_module, "sha256_file", counting)
    monkeypatch.setattr(lineage_module, "sha256_file", counting)
    check_inputs(["checkpoints", "final"])  # what the validate_run job does before validating
    document = run_validation(study, run_dir)
    files = [
        p.resolve()
        for d in ("checkpoints", "final")
        for p in (run_dir / d).rglob("*")
        if p.is_file() and not p.name.endswith(".lineage.json")
    ]
    assert files and {str(f): calls[str(f)] for f in files} == {str(f): 1 for f in files}
    assert not codes(document) & {"hash_mismatch", "file_missing"}


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
    doc = {
        "method": "full",
        "task": "t",
        "seed": 0,
        "passed": False,
        "critical": 1,
        "warning": 0,
        "flags": [
            {"severity": "critical", "code": "nonfinite_loss", "message": "loss is nan", "files": ["a/train_log.jsonl"]}
        ],
    }
    path = tmp_path / "seed0.json"
    path.write_text(json.dumps(doc))
    enforce_strict([str(path)], strict=False)
    with pytest.raises(ValidationFailed, match=r"nonfinite_loss.*a/train_log.jsonl"):
        enforce_strict([str(path)], strict=True)


# ---------------------------------------------------------------- degenerate models

RUN = "full/tiny/seed0"


def test_loss_that_barely_moved_is_critical():
    """A loss ending at 99% of its first value raises loss_barely_moved, naming the run and the fix."""
    records = [{"step": s, "loss": 0.70 - 0.001 * s} for s in range(1, 9)]
    flags = check_loss_moved(records, SPEC, None, RUN, "log")
    assert [f["code"] for f in flags] == ["loss_barely_moved"]
    assert flags[0]["message"].startswith(RUN) and "more optimiser steps" in flags[0]["message"]


def test_exploding_loss_is_diverged_not_stalled():
    """A loss rising from 0.67 to hundreds raises loss_diverged with the smaller-learning-rate fix, never
    loss_barely_moved's larger-learning-rate advice; its loss_at_chance gives the same fix."""
    records = [{"step": s, "loss": 0.67 * 3.0**s} for s in range(0, 8)]
    flags = check_loss_moved(records, SPEC, 2, RUN, "log")
    assert [f["code"] for f in flags] == ["loss_diverged", "loss_at_chance"]
    assert all("smaller learning rate" in f["message"] and "larger" not in f["message"] for f in flags)
    assert flags[0]["message"].startswith(RUN)
    almost = [{"step": s, "loss": 0.70 + 0.1 * s} for s in range(1, 9)]  # ends below twice its start
    assert [f["code"] for f in check_loss_moved(almost, SPEC, None, RUN, "log")] == ["loss_barely_moved"]


def test_falling_loss_is_not_flagged_as_stalled():
    """A loss falling from 0.69 to 0.35 raises neither loss_barely_moved nor loss_at_chance."""
    records = [{"step": s, "loss": 0.69 - 0.04 * s} for s in range(1, 10)]
    assert check_loss_moved(records, SPEC, 2, RUN, "log") == []


def test_classifier_loss_above_chance_is_critical():
    """A 3-label classifier whose loss fell 20% but still ends above ln 3 raises loss_at_chance only."""
    records = [{"step": s, "loss": 1.4 - 0.035 * s} for s in range(1, 9)]
    flags = check_loss_moved(records, SPEC, 3, RUN, "log")
    assert [f["code"] for f in flags] == ["loss_at_chance"] and "ln(3) = 1.0986" in flags[0]["message"]
    assert check_loss_moved(records, SPEC, None, RUN, "log") == []  # no head: no chance level


def test_stall_ratio_comes_from_the_spec():
    """A loss ending at 91% of its start passes the default 0.95 and is flagged with loss_stall_ratio 0.9."""
    records = [{"step": s, "loss": 1.0 - 0.0125 * s} for s in range(0, 9)]  # median of the last 3: 0.9125
    assert check_loss_moved(records, SPEC, None, RUN, "log") == []
    strict = dataclasses.replace(SPEC, loss_stall_ratio=0.9)
    assert [f["code"] for f in check_loss_moved(records, strict, None, RUN, "log")] == ["loss_barely_moved"]


BASELINE = {
    "higher_is_better": True,
    "reference": "linear_probe",
    "baselines": {"majority": {"primary": 0.5}, "linear_probe": {"primary": 0.68}},
}


def test_run_at_the_majority_baseline_is_critical_and_below_probe_warns():
    """Accuracy 0.5 = majority: not_better_than_trivial (critical); 0.18 under the probe: below_baseline (warning)."""
    flags = check_baselines({"primary": 0.5, "primary_metric": "accuracy"}, BASELINE, "majority", SPEC, RUN, ["m"])
    assert {(f["code"], f["severity"]) for f in flags} == {
        ("not_better_than_trivial", "critical"),
        ("below_baseline", "warning"),
    }
    below = next(f for f in flags if f["code"] == "below_baseline")
    assert "0.1800 below the 'linear_probe' baseline 0.6800" in below["message"]


def test_run_beating_every_baseline_is_not_flagged():
    """Accuracy 0.75 beats majority and probe: no baseline flag."""
    assert check_baselines({"primary": 0.75}, BASELINE, "majority", SPEC, RUN, ["m"]) == []


def test_trivial_baseline_respects_lower_is_better():
    """Wasserstein (lower is better) 0.35 against uniform 0.30 is not better; 0.20 is."""
    doc = {"higher_is_better": False, "baselines": {"uniform": {"primary": 0.30}}}
    assert [f["code"] for f in check_baselines({"primary": 0.35}, doc, "uniform", SPEC, RUN, [])] == [
        "not_better_than_trivial"
    ]
    assert check_baselines({"primary": 0.20}, doc, "uniform", SPEC, RUN, []) == []


def test_type_without_trivial_baseline_only_compares_learned_ones():
    """trivial_baseline None: the majority entry is compared as a learned baseline (a warning at most)."""
    flags = check_baselines({"primary": 0.5}, BASELINE, None, SPEC, RUN, [])
    assert [(f["code"], f["severity"]) for f in flags] == [("below_baseline", "warning")]


def test_severity_follows_warning_and_critical_codes():
    """warning_codes demotes a critical code, critical_codes promotes a warning; a code in both stays critical."""
    flags = [
        flag("critical", "loss_barely_moved", ""),
        flag("warning", "below_baseline", ""),
        flag("critical", "loss_at_chance", ""),
    ]
    spec = dataclasses.replace(
        SPEC, warning_codes=("loss_barely_moved", "loss_at_chance"), critical_codes=("below_baseline", "loss_at_chance")
    )
    assert [f["severity"] for f in apply_severity(flags, spec)] == ["warning", "critical", "critical"]


def test_planned_run_shorter_than_the_rule_of_thumb_warns():
    """4 planned steps of a 2-label task: too_few_steps warning naming the rule; 90 steps over 3 epochs pass."""
    short = plan(48, 2, 8, 1, 1, 3, 4)
    flags = check_sizing({"sizing": short}, SPEC, RUN, "run.json")
    assert [(f["code"], f["severity"]) for f in flags] == [("too_few_steps", "warning")]
    assert "4 optimiser steps < 60" in flags[0]["message"] and "0.67 passes" in flags[0]["message"]
    assert check_sizing({"sizing": plan(480, 2, 16, 1, 1, 3, None)}, SPEC, RUN, "run.json") == []


def test_collapsed_predictions_and_baseline_reach_the_report(study, tmp_path: Path):
    """validate_run with a one-class predictions file and a baseline it does not beat: critical flags naming
    the run and the files, and the report fails."""
    import pandas as pd

    root, task, data, method = study
    preds = tmp_path / "predictions.parquet"
    pd.DataFrame({"example_id": [f"e{i}" for i in range(8)], "label": [0, 1] * 4, "prediction": [0] * 8}).to_parquet(
        preds
    )
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(BASELINE))
    metrics_path = tmp_path / "metrics.json"
    metrics_path.write_text(json.dumps({"primary": 0.5, "primary_metric": "accuracy", "loss": 0.69}))
    document = validate_run(
        MODEL,
        task,
        method,
        SPEC,
        None,
        root / "clean",
        metrics_path,
        data,
        tmp_path / "v.json",
        tmp_path / "v.txt",
        seed=0,
        predictions_path=preds,
        baseline_path=baseline,
    )
    assert {"single_class_predictions", "positive_never_predicted", "not_better_than_trivial"} <= codes(document)
    single = next(f for f in document["flags"] if f["code"] == "single_class_predictions")
    assert single["message"].startswith("full/tiny/seed0: ") and single["files"] == [str(preds)]
    assert not document["passed"] and document["checked"]["baseline"] == str(baseline)


def _matrix(name: str, norm: float | None, finite: bool = True) -> dict:
    return {"name": name, "relative_update_norm": norm, "finite": finite}


def test_weight_checks_known_answers():
    """NaN/inf in any matrix is critical, naming it; no matrix changed is critical; any change passes."""
    moved = {"matrices": [_matrix("a", 0.0), _matrix("b", 0.01)]}
    assert check_weights(moved, "full/t/seed0", "w.json") == []
    nan = {"matrices": [_matrix("a", 0.01), _matrix("b", None, finite=False)]}
    [found] = check_weights(nan, "full/t/seed0", "w.json")
    assert (found["code"], found["severity"], found["files"]) == ("nonfinite_weights", "critical", ["w.json"])
    assert "1 of 2" in found["message"] and "first: b" in found["message"]
    still = {"matrices": [_matrix("a", 0.0), _matrix("b", 0.0)]}
    assert [f["code"] for f in check_weights(still, "full/t/seed0", "w.json")] == ["weights_unchanged"]


def _validate_weights(study, run_dir: Path) -> dict:
    from tunetrace.analysis.weightspace import WeightSpec

    root, task, data, method = study
    metrics_path = run_dir / "metrics.json"
    metrics_path.write_text(json.dumps({"primary": 0.75, "primary_metric": "accuracy", "loss": 0.69}))
    return validate_run(
        MODEL,
        task,
        method,
        SPEC,
        None,
        run_dir,
        metrics_path,
        data,
        run_dir / "v.json",
        run_dir / "v.txt",
        seed=0,
        weight_spec=WeightSpec.from_dict({}),
        weights_path=run_dir / "weights.json",
    )


def test_clean_run_weights_are_analysed_and_pass(study):
    """With weights_path the validation writes the run's weight analysis beside its report, and a trained run
    raises no weight flag."""
    run_dir = copy_run(study, "weights_clean")
    document = _validate_weights(study, run_dir)
    analysis = json.loads((run_dir / "weights.json").read_text())
    assert len(analysis["matrices"]) == 36 and all(m["finite"] for m in analysis["matrices"])  # 6 blocks x 6 maps
    assert not codes(document) & {"nonfinite_weights", "weights_unchanged"}
    assert document["checked"]["weights"] == str(run_dir / "weights.json")


def test_second_runs_weight_analysis_reuses_the_base_factorisations(study, tmp_path, monkeypatch):
    """Two runs of a study: the first computes the base's 36 SVDs and caches them, the second computes none of
    them (all cache hits) and gets the numbers an uncached analysis gets; the analysis records its placement."""
    from tunetrace.analysis import weightspace
    from tunetrace.analysis.weightspace import WeightSpec
    from tunetrace.stages import validate

    root, task, data, method = study
    monkeypatch.setenv("TUNETRACE_CACHE", str(tmp_path / "cache"))
    base_svds: list[int] = []
    real = weightspace.left_singular_vectors

    def counted(matrix, device=None):
        base_svds.append(1)
        return real(matrix, device)

    monkeypatch.setattr(validate, "left_singular_vectors", counted)
    spec = WeightSpec.from_dict({})
    first = validate.analyze_weights(MODEL, task, method, spec, root / "clean" / "final", 0, tmp_path / "a.json")
    assert len(base_svds) == 36 and len(list((tmp_path / "cache" / "weight-factors").glob("*.safetensors"))) == 36
    second = validate.analyze_weights(MODEL, task, method, spec, root / "clean" / "final", 0, tmp_path / "b.json")
    assert len(base_svds) == 36  # none recomputed
    assert second["matrices"] == first["matrices"] and first["placement"]["kind"] == "cpu"
    from safetensors.numpy import load_file

    stored = [load_file(str(f))["u"] for f in (tmp_path / "cache" / "weight-factors").glob("*.safetensors")]
    assert {u.dtype for u in stored} == {np.dtype(np.float32)}  # half the disk of float64


def test_float32_factors_give_the_float64_intruder_counts():
    """The cache's float32 base vectors count the same intruder dimensions as float64 ones on matrices with
    intruders and without, and |cosines| within 1e-6."""
    from tunetrace.analysis.weightspace import intruder_dimensions, left_singular_vectors, top_left_singular_vectors

    rng = np.random.default_rng(3)
    base = rng.normal(size=(64, 48))
    small, rank_one = 0.01 * rng.normal(size=base.shape), 5 * np.outer(rng.normal(size=64), rng.normal(size=48))
    for tuned, expected in ((base + small, 0), (base + rank_one, 1)):
        u64 = left_singular_vectors(base)
        u32 = u64.astype(np.float32)
        counts = [intruder_dimensions(base, tuned, 8, 0.5, u) for u in (u64, u32)]
        assert counts[0] == counts[1] and counts[0] == expected
        top = top_left_singular_vectors(tuned, 8)
        assert np.abs(np.abs(top.T @ u64).max(axis=1) - np.abs(top.T @ u32).max(axis=1)).max() < 1e-6


def test_weight_maths_on_a_torch_device_match_numpy():
    """The torch SVD path (a GPU's, run here on the CPU device) gives numpy's numbers within tolerance."""
    from tunetrace.analysis.weightspace import WeightSpec, matrix_report

    rng = np.random.default_rng(0)
    base = rng.normal(size=(24, 16))
    tuned = base + 0.3 * rng.normal(size=(24, 1)) @ rng.normal(size=(1, 16))
    spec = WeightSpec.from_dict({"intruder_top_k": 4})
    on_numpy = matrix_report("m", base, tuned, spec, None)
    on_torch = matrix_report("m", base, tuned, spec, None, device="cpu")
    assert on_torch["intruder_dimensions"] == on_numpy["intruder_dimensions"]
    assert on_torch["update_effective_rank"] == pytest.approx(on_numpy["update_effective_rank"], rel=1e-9)


def test_nan_in_final_weights_is_critical_not_a_crash(study):
    """A final model with a NaN weight matrix: the analysis records it as not finite (no SVD is tried on it)
    and the validation raises nonfinite_weights."""
    import torch
    from safetensors.torch import load_file, save_file

    run_dir = copy_run(study, "weights_nan")
    weights_file = run_dir / "final" / "model.safetensors"
    tensors = load_file(str(weights_file))
    name = next(k for k in sorted(tensors) if k.endswith("attention.self.query.weight"))
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    save_file(tensors, str(weights_file), metadata={"format": "pt"})
    document = _validate_weights(study, run_dir)
    analysis = json.loads((run_dir / "weights.json").read_text())
    assert [m["name"] for m in analysis["matrices"] if not m["finite"]] == [name.removesuffix(".weight")]
    assert "nonfinite_weights" in codes(document) and not document["passed"]


def test_base_model_saved_as_final_is_critical(study):
    """A final directory that holds the untrained base model (the head aside) raises weights_unchanged."""
    from tunetrace.tasks.dispatch import get_task_type

    root, task, _, method = study
    run_dir = copy_run(study, "weights_base")
    get_task_type(task.type).load_model(MODEL, task).save_pretrained(run_dir / "final")
    assert "weights_unchanged" in codes(_validate_weights(study, run_dir))


def _raised_codes() -> set[str]:
    """Every literal red-flag code the package raises: flag(SEVERITY, "code", ...) and {"code": "..."}."""
    import re

    package = Path(__file__).resolve().parents[1] / "pkg" / "tunetrace"
    # whitespace and line breaks allowed where ruff format puts them
    pattern = re.compile(r'flag\(\s*(?:WARNING|CRITICAL|severity),\s*"([a-z0-9_]+)"|\{\s*"code":\s*"([a-z0-9_]+)"')
    return {a or b for path in package.rglob("*.py") for a, b in pattern.findall(path.read_text())}


def test_known_codes_are_exactly_the_raised_ones_and_documented():
    """tunetrace.codes lists every code the package raises and no other; docs/guard.md describes each."""
    from tunetrace.codes import RED_FLAG_CODES

    raised = _raised_codes()
    assert len(raised) >= 25 and raised == set(RED_FLAG_CODES), (
        sorted(raised - RED_FLAG_CODES),
        sorted(RED_FLAG_CODES - raised),
    )
    guide = (Path(__file__).resolve().parents[1] / "docs" / "guard.md").read_text()
    assert [c for c in sorted(RED_FLAG_CODES) if f"`{c}`" not in guide] == []


@pytest.mark.parametrize("key", ["warning_codes", "critical_codes"])
def test_an_unknown_flag_code_in_the_config_is_refused(key):
    """A typo in validation.warning_codes / critical_codes names the key and the known codes; trend codes pass."""
    from conftest import tiny_config
    from tunetrace.config import ConfigError, validate_config

    config = tiny_config()
    config["validation"] = {key: ["below_baseline", "step_time_s_trend_up"]}
    validate_config(config)
    config["validation"] = {key: ["below_baselin"]}
    with pytest.raises(ConfigError, match=rf"validation\.{key}.*'below_baselin'.*not_better_than_trivial"):
        validate_config(config)


# ---------------------------------------------------------------- verdicts that need evidence


def _ci_metrics(value: float, low: float, high: float, n: int = 200, name: str = "accuracy") -> dict:
    return {"primary": value, "primary_metric": name, "ci": {name: [low, high]}, "n": n, "confidence": 0.95}


MAJORITY = {"higher_is_better": True, "baselines": {"majority": {"primary": 0.5}}}


def test_trivial_baseline_is_judged_by_the_confidence_interval():
    """Accuracy 0.56, 95% CI [0.495, 0.625] over 200 examples, majority 0.50: critical, quoting the lower bound;
    a CI [0.51, 0.61] passes."""
    [found] = check_baselines(_ci_metrics(0.56, 0.495, 0.625), MAJORITY, "majority", SPEC, RUN, ["m"])
    assert (found["code"], found["severity"]) == ("not_better_than_trivial", "critical")
    assert "95% CI [0.4950, 0.6250] over 200 eval examples: its lower bound 0.4950" in found["message"]
    assert check_baselines(_ci_metrics(0.56, 0.51, 0.61), MAJORITY, "majority", SPEC, RUN, ["m"]) == []


def test_lower_is_better_interval_uses_its_upper_bound():
    """Wasserstein 0.20 with CI [0.15, 0.32] against uniform 0.30: the upper bound does not beat it."""
    doc = {"higher_is_better": False, "baselines": {"uniform": {"primary": 0.30}}}
    metrics = _ci_metrics(0.20, 0.15, 0.32, name="wasserstein")
    [found] = check_baselines(metrics, doc, "uniform", SPEC, RUN, [])
    assert "its upper bound 0.3200" in found["message"]
    assert check_baselines(_ci_metrics(0.20, 0.15, 0.28, name="wasserstein"), doc, "uniform", SPEC, RUN, []) == []


def test_tiny_eval_set_uses_the_point_estimate_and_says_why():
    """24 eval examples (< min_interval_examples 30): 0.56 passes on its point estimate, 0.50 fails naming the
    reason; no interval at all says bootstrap_samples."""
    assert check_baselines(_ci_metrics(0.56, 0.3, 0.8, n=24), MAJORITY, "majority", SPEC, RUN, []) == []
    [found] = check_baselines(_ci_metrics(0.50, 0.3, 0.7, n=24), MAJORITY, "majority", SPEC, RUN, [])
    assert "point estimate: only 24 eval examples (< validation.min_interval_examples 30)" in found["message"]
    [bare] = check_baselines(
        {"primary": 0.5, "primary_metric": "accuracy", "n": 500}, MAJORITY, "majority", SPEC, RUN, []
    )
    assert "evaluation.bootstrap_samples 0" in bare["message"]


def test_trivial_flag_names_class_weights_for_a_classifier():
    """The advice of not_better_than_trivial names tasks.<task>.class_weights when given the key."""
    [found] = check_baselines({"primary": 0.5}, MAJORITY, "majority", SPEC, RUN, [], "tasks.tiny.class_weights")
    assert "tasks.tiny.class_weights: balanced" in found["message"]


def test_weights_barely_changed_known_answers():
    """Every matrix below min_relative_update is critical, naming the largest; one above it passes; 0 disables."""
    tiny = {"matrices": [_matrix("a", 1e-6), _matrix("b", 5e-5)]}
    [found] = check_weights(tiny, RUN, "w.json", 1e-4)
    assert (found["code"], found["severity"]) == ("weights_barely_changed", "critical")
    assert "largest 5e-05, b" in found["message"]
    assert check_weights({"matrices": [_matrix("a", 1e-6), _matrix("b", 2e-4)]}, RUN, "w.json", 1e-4) == []
    assert check_weights(tiny, RUN, "w.json", 0.0) == []


def test_run_that_ended_in_warmup_is_critical():
    """2 steps with warmup_ratio 0.9 (2 warmup steps): lr_never_warmed_up quoting the logged learning rate; warmup
    0.1 (1 step) or a constant schedule: none."""
    from tunetrace.guard.validation import check_warmup, warmup_steps

    assert (warmup_steps(0.1, 2), warmup_steps(0.9, 2), warmup_steps(5, 100)) == (1, 2, 5)
    meta, records = {"global_steps": 2, "planned_steps": 2}, [{"step": 1, "loss": 0.7, "learning_rate": 0.0}]
    [found] = check_warmup(meta, tiny_method("full", warmup_ratio=0.9), records, RUN, "run.json", "log")
    assert (found["code"], found["severity"]) == ("lr_never_warmed_up", "critical")
    assert "inside the 2-step warmup" in found["message"] and "learning rate is 0 at step 1" in found["message"]
    assert check_warmup(meta, tiny_method("full", warmup_ratio=0.1), records, RUN, "run.json", "log") == []
    constant = tiny_method("full", warmup_ratio=0.9, scheduler="constant")
    assert check_warmup(meta, constant, records, RUN, "run.json", "log") == []


def test_loss_at_chance_from_one_log_point():
    """One logged loss 0.739 >= ln 2 is loss_at_chance (saying it is the only point); 0.5 is not."""
    [found] = check_loss_moved([{"step": 1, "loss": 0.739}], SPEC, 2, RUN, "log")
    assert found["code"] == "loss_at_chance" and "the only log point" in found["message"]
    assert check_loss_moved([{"step": 1, "loss": 0.5}], SPEC, 2, RUN, "log") == []


def test_expected_range_follows_the_metric_direction():
    """Perplexity (lower is better) above max is critical, below min a warning; accuracy keeps its old meaning."""
    from tunetrace.guard.validation import check_metric

    worse = check_metric({"primary": 3.0, "primary_metric": "perplexity"}, {"min": None, "max": 2.0}, "m", False)
    assert [(f["code"], f["severity"]) for f in worse] == [("metric_above_range", "critical")]
    good = check_metric({"primary": 0.5, "primary_metric": "perplexity"}, {"min": 1.0, "max": None}, "m", False)
    assert [(f["code"], f["severity"]) for f in good] == [("metric_below_range", "warning")]
    low = check_metric({"primary": 0.5, "primary_metric": "accuracy"}, {"min": 0.6, "max": None}, "m")
    assert [(f["code"], f["severity"]) for f in low] == [("metric_below_range", "critical")]


LM_METRICS = {
    "loss": 0.08,
    "perplexity": 1.08,
    "primary": 0.08,
    "primary_metric": "loss",
    "strata": {"easy": {"loss": 0.05, "perplexity": 1.05}, "hard": {"loss": 1.2, "perplexity": 3.32}},
}


def example_criteria() -> list[dict]:
    """The criteria of config/examples/study_merge_validate.yaml, defaults filled."""
    import yaml

    from tunetrace.config import validate_config

    path = Path(__file__).resolve().parents[1] / "config" / "examples" / "study_merge_validate.yaml"
    return validate_config(yaml.safe_load(path.read_text()))["tasks"]["instructions"]["criteria"]


def test_example_criteria_are_enforced_per_stratum():
    """The merge-validation study's four bounds: loss 0.08 < 0.10, perplexity 1.08 < 2.0, easy 1.05 < 1.5 pass;
    hard-stratum perplexity 3.32 >= 3.0 fails, critical, naming the criterion and the direction."""
    from tunetrace.guard.validation import check_criteria

    criteria = example_criteria()
    assert [(c["metric"], c["stratum"], c["max"]) for c in criteria] == [
        ("loss", None, 0.10),
        ("perplexity", None, 2.0),
        ("perplexity", "easy", 1.5),
        ("perplexity", "hard", 3.0),
    ]
    [found] = check_criteria(LM_METRICS, criteria, "causal_lm", "instructions", RUN, "m.json")
    assert (found["code"], found["severity"]) == ("criterion_not_met", "critical")
    assert "perplexity in stratum 'hard' 3.3200 fails tasks.instructions.criteria[3]" in found["message"]
    assert "perplexity <= 3 required (perplexity: lower is better)" in found["message"]
    passing = {**LM_METRICS, "strata": {**LM_METRICS["strata"], "hard": {"loss": 1.0, "perplexity": 2.7}}}
    assert check_criteria(passing, criteria, "causal_lm", "instructions", RUN, "m.json") == []


def test_criteria_severity_direction_and_unmeasured():
    """A warning criterion stays a warning; accuracy (higher is better) fails below min and is suspiciously good
    above max, per group of a classifier; a stratum the evaluation lacks is criterion_unmeasured."""
    from tunetrace.guard.validation import check_criteria

    metrics = {"accuracy": 0.9, "groups": {"groups": {"films": {"accuracy": 0.6}, "books": {"accuracy": 1.0}}}}
    criteria = [
        {"metric": "accuracy", "stratum": "films", "min": 0.7, "max": None, "severity": "warning"},
        {"metric": "accuracy", "stratum": "books", "min": 0.7, "max": 0.99, "severity": "critical"},
        {"metric": "accuracy", "stratum": "games", "min": 0.7, "max": None, "severity": "critical"},
        {"metric": "accuracy", "stratum": None, "min": 0.8, "max": None, "severity": "critical"},
    ]
    found = check_criteria(metrics, criteria, "sequence_classification", "t", RUN, "m.json")
    assert [(f["code"], f["severity"]) for f in found] == [
        ("criterion_not_met", "warning"),
        ("criterion_suspiciously_good", "warning"),
        ("criterion_unmeasured", "critical"),
    ]


def test_strict_stop_is_a_study_stopped_with_the_whole_story(tmp_path: Path):
    """enforce_strict raises a StudyStopped (from tunetrace.config, not guard) whose message names the flag, the
    run, the file and the fix."""
    from tunetrace.config import StudyStopped

    doc = {
        "method": "full",
        "task": "t",
        "seed": 0,
        "passed": False,
        "critical": 1,
        "warning": 0,
        "flags": [flag("critical", "loss_at_chance", "stuck", ["a/train_log.jsonl"])],
    }
    (tmp_path / "seed0.json").write_text(json.dumps(doc))
    with pytest.raises(StudyStopped) as stopped:
        enforce_strict([str(tmp_path / "seed0.json")], strict=True)
    text = str(stopped.value)
    assert "full/t/seed0 loss_at_chance" in text and "a/train_log.jsonl" in text and "validation.strict: false" in text


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory):
    """Real tiny runs, evaluated against the task's real baselines: the do-nothing run of the issue (learning rate
    1e-8, 2 steps, its one log point in warmup) and a run that learned (16 steps at 2e-4)."""
    from tunetrace.config import EvalSpec
    from tunetrace.stages.baseline import evaluate_baseline
    from tunetrace.stages.pilot import score_pilot

    root = tmp_path_factory.mktemp("judged")
    task, data = tiny_task(root)
    spec = EvalSpec.from_dict({"bootstrap_samples": 200})
    evaluate_baseline(MODEL, task, spec, data, root / "baseline.json")
    methods = {
        "idle": tiny_method(
            "full", learning_rate=1e-8, max_steps=2, warmup_ratio=0.1, logging_steps=5, save_every_steps=None
        ),
        "learned": tiny_method(
            "full", learning_rate=2e-4, max_steps=16, warmup_ratio=0.1, logging_steps=2, save_every_steps=None
        ),
    }
    reports = {}
    for name, method in methods.items():
        train_run(MODEL, task, method, 0, data, root / name)
        score_pilot(MODEL, task, method, spec, 0, data, root / name, root / name / "eval")
        # 24 eval examples: the interval is used (the demo's case) by lowering the threshold below them
        reports[name] = validate_run(
            MODEL,
            task,
            method,
            dataclasses.replace(SPEC, min_interval_examples=20),
            None,
            root / name,
            root / name / "eval" / "metrics.json",
            data,
            root / name / "v.json",
            root / name / "v.txt",
            seed=0,
            predictions_path=root / name / "eval" / "predictions.parquet",
            baseline_path=root / "baseline.json",
        )
    return reports


def test_do_nothing_run_fails_validation_naming_why(judged):
    """Learning rate 1e-8 for 2 steps: not passed, with loss_at_chance from its one log point and the trivial
    baseline not beaten by the interval, each naming the run."""
    report = judged["idle"]
    critical = {f["code"]: f["message"] for f in report["flags"] if f["severity"] == "critical"}
    assert not report["passed"], report["flags"]
    assert "loss_at_chance" in critical and "the only log point" in critical["loss_at_chance"]
    assert "not_better_than_trivial" in critical and "CI [" in critical["not_better_than_trivial"]
    assert all(message.startswith("full/tiny/seed0: ") for message in critical.values())


def test_run_that_learned_still_passes(judged):
    """A run that learned the tiny task passes with no critical flag (too_few_steps stays a warning)."""
    report = judged["learned"]
    assert report["passed"] and report["critical"] == 0, report["flags"]


def _comparison(primaries: list[float]) -> dict:
    runs = [{"seed": s, "primary": v} for s, v in enumerate(primaries)]
    return {"tasks": {"t": {"primary_metric": "accuracy", "methods": {"full": {"runs": runs}}}}}


def test_seed_disagreement_flags_a_spread_above_the_bound():
    """A method whose seeds' primary metric spreads by more than validation.max_seed_spread is flagged with every
    seed's value; a spread within the bound, one seed or no bound is not."""
    from tunetrace.guard.validation import seed_disagreement

    (hit,) = seed_disagreement(_comparison([0.81, 0.62, 0.79]), 0.1)
    assert (hit["code"], hit["severity"], hit["method"], hit["task"]) == ("seed_disagreement", "warning", "full", "t")
    assert "spreads 0.1900" in hit["message"] and "seed1 0.6200" in hit["message"]
    assert seed_disagreement(_comparison([0.81, 0.75]), 0.1) == []
    assert seed_disagreement(_comparison([0.81]), 0.0) == []
    assert seed_disagreement(_comparison([0.81, 0.1]), None) == []
    assert seed_disagreement(_comparison([0.81, 0.1]), 0.1, "critical")[0]["severity"] == "critical"


def test_study_flags_are_rendered_in_the_comparison_markdown():
    """comparison.md gets a study-level section listing each seed_disagreement flag."""
    from tunetrace.guard.validation import seed_disagreement
    from tunetrace.reporting.comparison import _study_flag_lines

    doc = {"study_flags": {"max_seed_spread": 0.1, "flags": seed_disagreement(_comparison([0.9, 0.5]), 0.1)}}
    text = "\n".join(_study_flag_lines(doc))
    assert "## Study-level flags" in text and "| full | t | warning | seed_disagreement |" in text


def test_expected_representation_steps_follow_every_steps():
    """Captures every every_steps, at the last step, and at 0 only with capture_step0."""
    from tunetrace.guard.validation import expected_representation_steps

    assert expected_representation_steps(10, 4, False) == [4, 8, 10]
    assert expected_representation_steps(8, 4, True) == [0, 4, 8]


def test_missing_representation_step_is_flagged(tmp_path: Path):
    """A step directory the interval calls for but the run lacks is critical and named; none when all are there or
    representations are off."""
    from tunetrace.guard.validation import check_representation_steps

    for step in (0, 4):
        (tmp_path / f"step_{step:06d}").mkdir()
    spec = {"enabled": True, "every_steps": 4, "capture_step0": True}
    (hit,) = check_representation_steps(tmp_path, 10, spec, "full/t/seed0")
    assert hit["code"] == "representation_steps_missing" and hit["severity"] == "critical"
    assert "2 of 4" in hit["message"] and "step_000008, step_000010" in hit["message"]
    for step in (8, 10):
        (tmp_path / f"step_{step:06d}").mkdir()
    assert check_representation_steps(tmp_path, 10, spec, "r") == []
    assert check_representation_steps(tmp_path, 12, {**spec, "enabled": False}, "r") == []
