"""Adapter for rule train_run: fine-tune one (method, task, seed), resuming after a kill."""

import json
from pathlib import Path

import torch

from tunetrace.launch import TrainingJob, run_training
from tunetrace.logutil import setup_logging

setup_logging(snakemake.log[0], capture_stderr=True)
torch.set_num_threads(snakemake.threads)
run_training(
    TrainingJob(
        model=json.loads(snakemake.params.model),
        task_name=snakemake.wildcards.task,
        task=json.loads(snakemake.params.task),
        method_name=snakemake.wildcards.method,
        method=json.loads(snakemake.params.method),
        seed=int(snakemake.wildcards.seed),
        data_dir=str(Path(snakemake.input.train).parent),
        run_dir=str(Path(snakemake.output.metadata).parent),
        resume_dir=snakemake.params.resume_dir,
        representations=json.loads(snakemake.params.representations),
        reps_dir=snakemake.output.reps,
    ),
    threads=snakemake.threads,
)
Path(snakemake.output.checkpoints).mkdir(parents=True, exist_ok=True)
Path(snakemake.output.reps).mkdir(parents=True, exist_ok=True)

from tunetrace.lineage import record_lineage  # noqa: E402  (lineage: keep last)
record_lineage(snakemake)
