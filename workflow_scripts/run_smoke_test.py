"""Adapter for rule run_smoke_test: train a few steps (launched as train_run launches the method), reload
checkpoints, resume, loss must fall."""

from tunetrace.config import ValidationSpec
from tunetrace.jobcontext import job
from tunetrace.stages.smoke import run_smoke
from tunetrace.training.launch import TrainingJob

with job(snakemake, torch_threads=True) as j:
    run_smoke(
        TrainingJob.of_rule(j, j.params.work_dir, seed=0),
        ValidationSpec.from_dict(j.param("validation")),
        work_dir=j.params.work_dir,
        out_path=j.output.report,
        threads=j.threads,
    )
