"""Adapter for rule train_run: fine-tune one (method, task, seed)."""

import json
from pathlib import Path

import torch

from tunetrace.config import MethodSpec, ModelSpec, TaskSpec
from tunetrace.logutil import setup_logging
from tunetrace.training import train_run
from tunetrace.representations import RepresentationSpec, representation_callback

setup_logging(snakemake.log[0], capture_stderr=True)
torch.set_num_threads(snakemake.threads)
run_dir = Path(snakemake.params.run_dir)
reps = RepresentationSpec.from_dict(json.loads(snakemake.params.representations))
rep_callbacks = [representation_callback(
    ModelSpec.from_dict(json.loads(snakemake.params.model)),
    TaskSpec.from_dict(snakemake.wildcards.task, json.loads(snakemake.params.task)),
    reps, data_dir=Path(snakemake.input.train).parent, out_dir=snakemake.output.reps,
    run=f"{snakemake.wildcards.method}/{snakemake.wildcards.task}/seed{snakemake.wildcards.seed}",
)] if reps.enabled else []
train_run(
    ModelSpec.from_dict(json.loads(snakemake.params.model)),
    TaskSpec.from_dict(snakemake.wildcards.task, json.loads(snakemake.params.task)),
    MethodSpec.from_dict(snakemake.wildcards.method, json.loads(snakemake.params.method)),
    seed=int(snakemake.wildcards.seed),
    data_dir=Path(snakemake.input.train).parent,
    run_dir=run_dir,
    callbacks=rep_callbacks,
)
Path(snakemake.output.checkpoints).mkdir(parents=True, exist_ok=True)
Path(snakemake.output.reps).mkdir(parents=True, exist_ok=True)
