"""Adapter for rule run_smoke_test: train a few steps (launched as train_run launches the method), reload
checkpoints, resume, loss must fall."""

from pathlib import Path

from tunetrace.config import ValidationSpec
from tunetrace.jobcontext import job
from tunetrace.stages.smoke import run_smoke
from tunetrace.training.launch import TrainingJob

with job(snakemake, torch_threads=True) as j:
    run_smoke(
        TrainingJob(
            model=j.param("model"),
            task_name=j.wildcards.task,
            task=j.param("task"),
            method_name=j.wildcards.method,
            method=j.param("method"),
            seed=0,
            data_dir=str(Path(j.input.train).parent),
            run_dir=j.params.work_dir,
        ),
        ValidationSpec.from_dict(j.param("validation")),
        work_dir=j.params.work_dir,
        out_path=j.output.report,
        threads=j.threads,
    )
