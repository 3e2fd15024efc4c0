"""Adapter for rule evaluate_baseline: the task type's baselines (the pretrained model before fine-tuning)."""

from pathlib import Path

from tunetrace.config import EvalSpec, ModelSpec, TaskSpec
from tunetrace.jobcontext import job
from tunetrace.stages.baseline import evaluate_baseline

with job(snakemake, torch_threads=True) as j:
    evaluate_baseline(
        ModelSpec.from_dict(j.param("model")),
        TaskSpec.from_dict(j.wildcards.task, j.param("task")),
        EvalSpec.from_dict(j.param("evaluation")),
        data_dir=Path(j.input.train).parent,
        out_path=j.output.metrics,
    )
