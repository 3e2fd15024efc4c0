"""Adapter for rule verify_merge: the merged model must reproduce the adapter model."""

import json
from pathlib import Path

import torch

from tunetrace.config import EvalSpec, ModelSpec, TaskSpec
from tunetrace.logutil import setup_logging
from tunetrace.provenance.lineage import discard_records
from tunetrace.stages.verify_merge import verify_merge

setup_logging(snakemake.log[0], capture_stderr=True)
discard_records(snakemake.output)  # no record may outlive its output if this job fails
torch.set_num_threads(snakemake.threads)
verify_merge(
    ModelSpec.from_dict(json.loads(snakemake.params.model)),
    TaskSpec.from_dict(snakemake.wildcards.task, json.loads(snakemake.params.task)),
    EvalSpec.from_dict(json.loads(snakemake.params.evaluation)),
    data_dir=Path(snakemake.input.eval).parent,
    adapter_dir=snakemake.input.adapter,
    merged_dir=snakemake.input.merged,
    out_path=snakemake.output.check,
    identity={"method": snakemake.wildcards.lora_method, "task": snakemake.wildcards.task,
              "seed": int(snakemake.wildcards.seed)},
)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
