"""Adapter for rule validate_run: red flags of one run (JSON report and short text), and its weight analysis."""

import json
from pathlib import Path

import torch

from tunetrace.analysis.weightspace import WeightSpec
from tunetrace.config import MethodSpec, ModelSpec, TaskSpec, ValidationSpec
from tunetrace.guard.gates import as_paths
from tunetrace.logutil import setup_logging
from tunetrace.provenance.integrity import check_inputs
from tunetrace.provenance.lineage import discard_records
from tunetrace.stages.validate import validate_run

setup_logging(snakemake.log[0], capture_stderr=True)
discard_records(snakemake.output)  # no record may outlive its output if this job fails
check_inputs(snakemake.input)  # every input is what its rule wrote, before any is read
torch.set_num_threads(snakemake.threads)
validate_run(
    ModelSpec.from_dict(json.loads(snakemake.params.model)),
    TaskSpec.from_dict(snakemake.wildcards.task, json.loads(snakemake.params.task)),
    MethodSpec.from_dict(snakemake.wildcards.method, json.loads(snakemake.params.method)),
    ValidationSpec.from_dict(json.loads(snakemake.params.validation)),
    json.loads(snakemake.params.expected_range),
    run_dir=Path(snakemake.input.metadata).parent,
    metrics_path=snakemake.input.metrics,
    predictions_path=snakemake.input.predictions,
    baseline_path=snakemake.input.baseline,
    data_dir=Path(snakemake.input.eval).parent,
    out_json=snakemake.output.report,
    out_txt=snakemake.output.text,
    seed=int(snakemake.wildcards.seed),
    gate_paths=as_paths(snakemake.input.get("gate")),
    representations_dir=snakemake.input.reps,
    weight_spec=WeightSpec.from_dict(json.loads(snakemake.params.weight_analysis)),
    weights_path=snakemake.output.get("weights"),  # with representations on (rules/common.smk)
)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
