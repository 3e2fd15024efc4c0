"""Adapter for rule run_smoke_test: train a few steps, reload checkpoints, resume, loss must fall."""

import json
from pathlib import Path

import torch

from tunetrace.config import MethodSpec, ModelSpec, TaskSpec, ValidationSpec
from tunetrace.logutil import setup_logging
from tunetrace.provenance.lineage import discard_records
from tunetrace.stages.smoke import run_smoke

setup_logging(snakemake.log[0], capture_stderr=True)
discard_records(snakemake.output)  # no record may outlive its output if this job fails
torch.set_num_threads(snakemake.threads)
run_smoke(
    ModelSpec.from_dict(json.loads(snakemake.params.model)),
    TaskSpec.from_dict(snakemake.wildcards.task, json.loads(snakemake.params.task)),
    MethodSpec.from_dict(snakemake.wildcards.method, json.loads(snakemake.params.method)),
    ValidationSpec.from_dict(json.loads(snakemake.params.validation)),
    seed=0,
    data_dir=Path(snakemake.input.train).parent,
    work_dir=snakemake.params.work_dir,
    out_path=snakemake.output.report,
)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
