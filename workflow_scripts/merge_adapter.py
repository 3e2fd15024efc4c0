"""Adapter for rule merge_adapter: fold a LoRA adapter into the base weights."""

import json

import torch

from tunetrace.config import ModelSpec, TaskSpec
from tunetrace.logutil import setup_logging
from tunetrace.provenance.lineage import discard_records
from tunetrace.stages.merge import merge_adapter

setup_logging(snakemake.log[0], capture_stderr=True)
discard_records(snakemake.output)  # no record may outlive its output if this job fails
torch.set_num_threads(snakemake.threads)
merge_adapter(
    ModelSpec.from_dict(json.loads(snakemake.params.model)),
    TaskSpec.from_dict(snakemake.wildcards.task, json.loads(snakemake.params.task)),
    adapter_dir=snakemake.input.adapter,
    out_dir=snakemake.output.merged,
)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
