"""Adapter for rule analyze_weights: weight-space numbers of a run's update against the base."""

import json

import torch

from tunetrace.analysis.weightspace import WeightSpec, analyze_weights
from tunetrace.config import MethodSpec, ModelSpec, TaskSpec
from tunetrace.logutil import setup_logging
from tunetrace.provenance.lineage import discard_records

setup_logging(snakemake.log[0], capture_stderr=True)
discard_records(snakemake.output)  # no record may outlive its output if this job fails
torch.set_num_threads(snakemake.threads)
analyze_weights(
    ModelSpec.from_dict(json.loads(snakemake.params.model)),
    TaskSpec.from_dict(snakemake.wildcards.task, json.loads(snakemake.params.task)),
    MethodSpec.from_dict(snakemake.wildcards.method, json.loads(snakemake.params.method)),
    WeightSpec.from_dict(json.loads(snakemake.params.weight_analysis)),
    final_dir=snakemake.input.final,
    seed=int(snakemake.wildcards.seed),
    out_path=snakemake.output.weights,
)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
