"""Adapter for rule verify_merge: the merged model must reproduce the adapter model."""

from pathlib import Path

from tunetrace.config import EvalSpec, ModelSpec, TaskSpec
from tunetrace.jobcontext import job
from tunetrace.stages.verify_merge import verify_merge

with job(snakemake, torch_threads=True) as j:
    verify_merge(
        ModelSpec.from_dict(j.param("model")),
        TaskSpec.from_dict(j.wildcards.task, j.param("task")),
        EvalSpec.from_dict(j.param("evaluation")),
        data_dir=Path(j.input.eval).parent,
        adapter_dir=j.input.adapter,
        merged_dir=j.input.merged,
        out_path=j.output.check,
        identity={"method": j.wildcards.lora_method, "task": j.wildcards.task, "seed": j.seed},
    )
