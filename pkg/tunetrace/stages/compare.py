"""Stage of rule compare_runs: results/comparison.json and comparison.md from every run's results."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tunetrace.fileio import json_text, write_texts
from tunetrace.guard.validation import WARNING, enforce_strict, seed_disagreement
from tunetrace.reporting.comparison import (
    add_curve_plots,
    add_drift_sections,
    add_validation,
    build_comparison,
    render_markdown,
    validate_comparison,
)


def refuse_comparison(job: Any) -> None:
    """With validation.strict, a critical red flag in the job's validations stops it before anything is touched:
    the outputs are update() outputs (rules/compare.smk), so the previous comparison and its record stand."""
    enforce_strict(list(job.input.get("validations", [])), job.param("validation")["strict"])


def compare_runs(
    config: Mapping[str, Any],
    inputs: Mapping[str, list[str]],
    out_json: str | os.PathLike,
    out_md: str | os.PathLike,
    study_checks: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build, validate and write the comparison JSON and Markdown; with `study_checks` (max_seed_spread and
    the flag's severity) the study-level flags join it."""
    document = build_comparison(
        config, inputs["baselines"], inputs["evals"], inputs["runs"], inputs["merge_checks"], inputs["manifests"]
    )
    if inputs.get("curve_plots"):
        add_curve_plots(document, inputs["curve_plots"])
    if inputs.get("drift"):
        add_drift_sections(document, config, inputs["drift"], inputs.get("weights", []), inputs.get("drift_plots", []))
    if inputs.get("validations"):
        add_validation(document, inputs["validations"])
    if study_checks and study_checks.get("max_seed_spread") is not None:
        bound = study_checks["max_seed_spread"]
        document["study_flags"] = {
            "max_seed_spread": bound,
            "flags": seed_disagreement(document, bound, study_checks.get("seed_disagreement_severity", WARNING)),
        }
    validate_comparison(document)
    # both renderings of the one document, serialised before either file is replaced
    write_texts({out_json: json_text(document), out_md: render_markdown(document)})
    return document
