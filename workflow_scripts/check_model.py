"""Adapter for rule check_model: the base model of one task (name, config, LoRA targets) before any job loads it."""

import json

from tunetrace.config import LoraSpec, ModelSpec, TaskSpec
from tunetrace.logutil import setup_logging
from tunetrace.provenance.lineage import discard_records
from tunetrace.stages.check_model import check_model

setup_logging(snakemake.log[0], capture_stderr=True)
discard_records(snakemake.output)  # no record may outlive its output if this job fails
check_model(
    ModelSpec.from_dict(json.loads(snakemake.params.model)),
    TaskSpec.from_dict(snakemake.wildcards.task, json.loads(snakemake.params.task)),
    {name: LoraSpec.from_dict(lora) for name, lora in json.loads(snakemake.params.lora).items()},
    out_path=snakemake.output.summary,
)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
