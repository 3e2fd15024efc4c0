"""Adapter for rule validate_run: red flags of one run (JSON report and short text), and its weight analysis."""

from pathlib import Path

from tunetrace.analysis.weightspace import WeightSpec
from tunetrace.config import MethodSpec, ModelSpec, TaskSpec, ValidationSpec
from tunetrace.guard.gates import as_paths
from tunetrace.jobcontext import job
from tunetrace.stages.validate import validate_run

with job(snakemake, torch_threads=True, check_inputs=True) as j:
    validate_run(
        ModelSpec.from_dict(j.param("model")),
        TaskSpec.from_dict(j.wildcards.task, j.param("task")),
        MethodSpec.from_dict(j.wildcards.method, j.param("method")),
        ValidationSpec.from_dict(j.param("validation")),
        j.param("expected_range"),
        run_dir=Path(j.input.metadata).parent,
        metrics_path=j.input.metrics,
        predictions_path=j.input.predictions,
        baseline_path=j.input.baseline,
        data_dir=Path(j.input.eval).parent,
        out_json=j.output.report,
        out_txt=j.output.text,
        seed=j.seed,
        gate_paths=as_paths(j.input.get("gate")),
        representations_dir=j.input.reps,
        weight_spec=WeightSpec.from_dict(j.param("weight_analysis")),
        weights_path=j.output.get("weights"),  # with representations on (rules/common.smk)
        representation_spec=j.param("representations"),  # the steps expected in reps
    )
