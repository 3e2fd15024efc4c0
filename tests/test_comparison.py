"""reporting.comparison: per-group rates of baselines beside the runs, gaps, sizes and undefined rates."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from tunetrace.evaluation.metrics import group_error_rates
from tunetrace.reporting.comparison import render_markdown, validate_comparison

GROUPS = ["books"] * 8 + ["films"] * 8
Y_TRUE = [0, 1] * 8
CONSTANT = group_error_rates(Y_TRUE, [0] * 16, GROUPS, positive=1, min_class_examples=2)
# books: FPR 1/4, FNR 0; films: FPR 0, FNR 2/4
LEARNED = group_error_rates(Y_TRUE, [1, 1, 0, 1, 0, 1, 0, 1] + [0, 1, 0, 0, 0, 1, 0, 0], GROUPS, positive=1,
                            min_class_examples=2)


def stat(mean: float) -> dict[str, Any]:
    return {"mean": mean, "std": 0.0, "min": mean, "max": mean, "n": 1}


def document(run_groups: dict | None = LEARNED) -> dict[str, Any]:
    """A comparison with a majority baseline (constant), a probe and one full run, all with groups."""
    method = {"type": "full", "seeds": [0], "metrics": {k: stat(0.75) for k in ("accuracy", "f1", "macro_f1",
                                                                               "precision", "recall", "loss")},
              "primary": stat(0.75), "delta_vs_baseline": {"reference": "linear_probe", "baseline": 0.7,
                                                            "absolute": 0.05, "beats_baseline": True},
              "trainable_parameters": {"count": 10, "total": 10, "percent": 100.0},
              "train_wall_time_s": stat(1.0), "train_samples_per_second": stat(1.0), "peak_memory_mb": stat(1.0),
              "runs": [{"seed": 0, "primary": 0.75, "ci": {}, "groups": run_groups, "strata": None}],
              "merge_check": None}
    task = {"primary_metric": "accuracy", "baseline_reference": "linear_probe",
            "baseline": {"majority": {"primary": 0.5, "groups": CONSTANT},
                         "linear_probe": {"primary": 0.7, "groups": LEARNED}},
            "methods": {"full": method}}
    return {"schema_version": 1, "generated_at": "2026-01-01T00:00:00+00:00", "model": "m", "seeds": [0],
            "tasks": {"t": task}, "inputs": [{"kind": "evals", "path": "p", "sha256": "0" * 64}]}


def test_group_table_puts_baselines_beside_runs_with_sizes_and_gaps():
    """One row per group with n (pos / neg), a FPR / FNR column per baseline and run, and the largest gaps."""
    md = render_markdown(document())
    assert "| group | n (pos / neg) | baseline majority | baseline linear_probe | full seed 0 |" in md
    assert "| books | 8 (4 / 4) | n/a / n/a | 0.250 / 0.000 | 0.250 / 0.000 |" in md
    assert "| largest FPR gap | | n/a | 0.250 (books vs films) | 0.250 (books vs films) |" in md
    assert "| largest FNR gap | | n/a | 0.500 (films vs books) | 0.500 (films vs books) |" in md


def test_constant_baseline_says_why_its_rates_are_na():
    """The majority baseline's n/a cells are explained once: a constant predictor, not a perfectly fair one."""
    md = render_markdown(document())
    assert "- baseline majority, every rate: no example of the split is predicted positive" in md
    assert "0.000 / 1.000" not in md


def test_comparison_schema_accepts_null_rates_and_refuses_numbers_out_of_range():
    """Null rates with reasons validate; a rate of 1.5 does not."""
    validate_comparison(document())
    broken = document({**LEARNED, "groups": {**LEARNED["groups"],
                                             "books": {**LEARNED["groups"]["books"], "fpr": 1.5}}})
    with pytest.raises(jsonschema.ValidationError):
        validate_comparison(broken)
