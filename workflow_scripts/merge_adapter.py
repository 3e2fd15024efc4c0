"""Adapter for rule merge_adapter: fold a LoRA adapter into the base weights."""

from tunetrace.config import ModelSpec, TaskSpec
from tunetrace.jobcontext import job
from tunetrace.stages.merge import merge_adapter

with job(snakemake, torch_threads=True) as j:
    merge_adapter(
        ModelSpec.from_dict(j.param("model")),
        TaskSpec.from_dict(j.wildcards.task, j.param("task")),
        adapter_dir=j.input.adapter,
        out_dir=j.output.merged,
    )
