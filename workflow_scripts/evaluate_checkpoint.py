"""Adapter for rule evaluate_checkpoint: metrics and predictions of one saved checkpoint (step N) of a run."""

from pathlib import Path

from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from tunetrace.jobcontext import job
from tunetrace.stages.evaluate_checkpoint import evaluate_checkpoint

with job(snakemake, torch_threads=True) as j:
    evaluate_checkpoint(
        ModelSpec.from_dict(j.param("model")),
        TaskSpec.from_dict(j.wildcards.task, j.param("task")),
        MethodSpec.from_dict(j.wildcards.method, j.param("method")),
        EvalSpec.from_dict(j.param("evaluation")),
        seed=j.seed,
        step=int(j.wildcards.step),
        data_dir=Path(j.input.eval).parent,
        checkpoints_dir=j.input.checkpoints,
        out_dir=Path(j.output.metrics).parent,
    )
