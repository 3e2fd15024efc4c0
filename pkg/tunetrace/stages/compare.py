"""Stage of rule compare_runs: results/comparison.json and comparison.md from every run's results."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from tunetrace.fileio import json_text, write_texts
from tunetrace.guard.validation import enforce_strict
from tunetrace.reporting.comparison import (
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


def compare_runs(config: Mapping[str, Any], inputs: Mapping[str, list[str]], out_json: str | os.PathLike,
                 out_md: str | os.PathLike) -> dict[str, Any]:
    """Build, validate and write the comparison JSON and Markdown."""
    document = build_comparison(config, inputs["baselines"], inputs["evals"], inputs["runs"],
                                inputs["merge_checks"], inputs["manifests"])
    if inputs.get("drift"):
        add_drift_sections(document, config, inputs["drift"], inputs.get("weights", []), inputs.get("drift_plots", []))
    if inputs.get("validations"):
        add_validation(document, inputs["validations"])
    validate_comparison(document)
    # both renderings of the one document, serialised before either file is replaced
    write_texts({out_json: json_text(document), out_md: render_markdown(document)})
    return document
