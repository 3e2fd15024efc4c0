"""Adapter for rule run_smoke_test: train a few steps, reload checkpoints, resume, loss must fall."""

from pathlib import Path

from tunetrace.config import MethodSpec, ModelSpec, TaskSpec, ValidationSpec
from tunetrace.jobcontext import job
from tunetrace.stages.smoke import run_smoke

with job(snakemake, torch_threads=True) as j:
    run_smoke(
        ModelSpec.from_dict(j.param("model")),
        TaskSpec.from_dict(j.wildcards.task, j.param("task")),
        MethodSpec.from_dict(j.wildcards.method, j.param("method")),
        ValidationSpec.from_dict(j.param("validation")),
        seed=0,
        data_dir=Path(j.input.train).parent,
        work_dir=j.params.work_dir,
        out_path=j.output.report,
    )
