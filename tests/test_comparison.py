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
LEARNED = group_error_rates(
    Y_TRUE, [1, 1, 0, 1, 0, 1, 0, 1] + [0, 1, 0, 0, 0, 1, 0, 0], GROUPS, positive=1, min_class_examples=2
)


def stat(mean: float) -> dict[str, Any]:
    return {"mean": mean, "std": 0.0, "min": mean, "max": mean, "n": 1}


def document(run_groups: dict | None = LEARNED) -> dict[str, Any]:
    """A comparison with a majority baseline (constant), a probe and one full run, all with groups."""
    method = {
        "type": "full",
        "seeds": [0],
        "metrics": {k: stat(0.75) for k in ("accuracy", "f1", "macro_f1", "precision", "recall", "loss")},
        "primary": stat(0.75),
        "delta_vs_baseline": {"reference": "linear_probe", "baseline": 0.7, "absolute": 0.05, "beats_baseline": True},
        "trainable_parameters": {"count": 10, "total": 10, "percent": 100.0},
        "train_wall_time_s": stat(1.0),
        "train_samples_per_second": stat(1.0),
        "peak_memory_mb": stat(1.0),
        "runs": [{"seed": 0, "primary": 0.75, "ci": {}, "groups": run_groups, "strata": None}],
        "merge_check": None,
    }
    task = {
        "primary_metric": "accuracy",
        "baseline_reference": "linear_probe",
        "baseline": {
            "majority": {"primary": 0.5, "groups": CONSTANT},
            "linear_probe": {"primary": 0.7, "groups": LEARNED},
        },
        "methods": {"full": method},
    }
    return {
        "schema_version": 1,
        "generated_at": "2026-01-01T00:00:00+00:00",
        "model": "m",
        "seeds": [0],
        "tasks": {"t": task},
        "inputs": [{"kind": "evals", "path": "p", "sha256": "0" * 64}],
    }


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
    broken = document({**LEARNED, "groups": {**LEARNED["groups"], "books": {**LEARNED["groups"]["books"], "fpr": 1.5}}})
    with pytest.raises(jsonschema.ValidationError):
        validate_comparison(broken)


def _validated(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with a validation section: full seed 0 failed two critical checks and warned once."""
    flags = [
        {"method": "full", "task": "t", "seed": 0, "severity": s, "code": c, "message": "m", "files": []}
        for s, c in (
            ("critical", "loss_at_chance"),
            ("critical", "not_better_than_trivial"),
            ("warning", "too_few_steps"),
        )
    ]
    doc["validation"] = {
        "critical": 2,
        "warning": 1,
        "flags": flags,
        "runs": [
            {"method": "full", "task": "t", "seed": 0, "passed": False, "critical": 2, "warning": 1, "report": "r.json"}
        ],
    }
    return doc


def _row(md: str, method: str) -> str:
    return next(line for line in md.splitlines() if line.startswith(f"| {method} | "))


def test_flagged_run_is_marked_in_the_results_table():
    """The results table has a red-flags column: the failed run's row says FAIL with its seed and critical codes."""
    md = render_markdown(_validated(document()))
    header = next(line for line in md.splitlines() if line.startswith("| method | type |"))
    assert header.endswith("| merge check | red flags |")
    assert _row(md, "full").endswith("| **FAIL** seed 0: loss_at_chance, not_better_than_trivial (1 warning) |")
    doc = _validated(document())
    doc["validation"]["flags"] = doc["validation"]["flags"][2:]
    doc["validation"]["runs"][0].update(passed=True, critical=0)
    assert _row(render_markdown(doc), "full").endswith("| pass (1 warning) |")
    assert "red flags" not in render_markdown(document()).split("## Red flags")[0]  # no validation: no column


def test_f1_primary_metric_has_no_second_f1_column():
    """primary_metric f1: the table shows 'f1 (mean ± sd)' once and no separate F1 column; accuracy keeps F1."""
    doc = document()
    doc["tasks"]["t"]["primary_metric"] = "f1"
    header = next(line for line in render_markdown(doc).splitlines() if line.startswith("| method | type |"))
    assert "| f1 (mean ± sd) |" in header and "| F1 |" not in header
    cells = _row(render_markdown(doc), "full").split("|")
    assert len(cells) == len(header.split("|"))
    accuracy = next(line for line in render_markdown(document()).splitlines() if line.startswith("| method | type |"))
    assert "| accuracy (mean ± sd) |" in accuracy and "| F1 |" in accuracy


def test_seed_disagreement_section_validates_and_renders():
    """Two seeds 0.30 apart under validation.max_seed_spread 0.1: comparison.json's study_flags validate against
    the schema and comparison.md shows the flag in its study-level section."""
    from tunetrace.guard.validation import seed_disagreement

    doc = document()
    doc["seeds"] = [0, 1]
    doc["tasks"]["t"]["methods"]["full"]["runs"].append(
        {"seed": 1, "primary": 0.45, "ci": {}, "groups": None, "strata": None}
    )
    doc["study_flags"] = {"max_seed_spread": 0.1, "flags": seed_disagreement(doc, 0.1)}
    validate_comparison(doc)
    assert doc["study_flags"]["flags"][0]["code"] == "seed_disagreement"
    assert "| full | t | warning | seed_disagreement | full/t: accuracy spreads 0.3000" in render_markdown(doc)
