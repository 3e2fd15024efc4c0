"""Adapter for rule train_run: fine-tune one (method, task, seed), resuming after a kill."""

from pathlib import Path

from tunetrace.jobcontext import job
from tunetrace.stages.train import train
from tunetrace.training.jobcontrol import run_as_job
from tunetrace.training.launch import TrainingJob

# run_as_job: dies with snakemake; Ctrl-C stops training at the next step and fails the job
with job(snakemake, torch_threads=True, on_start=run_as_job) as j:
    train(
        TrainingJob.of_rule(
            j,
            Path(j.output.metadata).parent,
            resume_dir=j.params.resume_dir,
            representations=j.param("representations"),
            reps_dir=j.output.reps,
            sizing=j.param("sizing"),
            tracking=j.param("tracking"),  # rank 0 of the run owns the W&B run
        ),
        gate_paths=j.input.get("gate"),  # a NO-GO gate with enforce stops before any training
        threads=j.threads,
        outputs_path=j.output.outputs,
        checkpoints_dir=j.output.checkpoints,
        reps_dir=j.output.reps,
    )
