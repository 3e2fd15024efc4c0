"""Adapter for rule pilot_run: a short pilot of the method, evaluated on the eval split."""

import json
from pathlib import Path

import torch

from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from tunetrace.guard.gates import GateSpec
from tunetrace.logutil import setup_logging
from tunetrace.provenance.lineage import discard_records
from tunetrace.stages.pilot import run_pilot

setup_logging(snakemake.log[0], capture_stderr=True)
discard_records(snakemake.output)  # no record may outlive its output if this job fails
torch.set_num_threads(snakemake.threads)
run_pilot(
    ModelSpec.from_dict(json.loads(snakemake.params.model)),
    TaskSpec.from_dict(snakemake.wildcards.task, json.loads(snakemake.params.task)),
    MethodSpec.from_dict(snakemake.wildcards.method, json.loads(snakemake.params.method)),
    GateSpec.from_method({"gate": json.loads(snakemake.params.pilot)}),
    EvalSpec.from_dict(json.loads(snakemake.params.evaluation)),
    seed=int(snakemake.wildcards.seed),
    data_dir=Path(snakemake.input.train).parent,
    out_dir=Path(snakemake.output.metrics).parent,
)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
