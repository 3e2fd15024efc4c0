"""Adapter for rule check_model: the base model of one task (name, config, LoRA targets) before any job loads it."""

from tunetrace.config import LoraSpec, ModelSpec, TaskSpec
from tunetrace.jobcontext import job
from tunetrace.stages.check_model import check_model

with job(snakemake) as j:
    check_model(
        ModelSpec.from_dict(j.param("model")),
        TaskSpec.from_dict(j.wildcards.task, j.param("task")),
        {name: LoraSpec.from_dict(lora) for name, lora in j.param("lora").items()},
        out_path=j.output.summary,
    )
