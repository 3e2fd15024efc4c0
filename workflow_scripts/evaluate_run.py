"""Adapter for rule evaluate_run: metrics, group error rates and predictions of a run, scored from the raw
outputs its training job wrote (the saved final model is not loaded again here)."""

from pathlib import Path

from tunetrace.config import EvalSpec, MethodSpec, TaskSpec
from tunetrace.jobcontext import job
from tunetrace.stages.evaluate import score_run

with job(snakemake) as j:
    score_run(
        TaskSpec.from_dict(j.wildcards.task, j.param("task")),
        MethodSpec.from_dict(j.wildcards.method, j.param("method")),
        EvalSpec.from_dict(j.param("evaluation")),
        seed=j.seed,
        data_dir=Path(j.input.eval).parent,
        outputs_path=j.input.outputs,
        out_dir=Path(j.output.metrics).parent,
    )
