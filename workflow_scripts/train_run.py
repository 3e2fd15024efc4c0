"""Adapter for rule train_run: fine-tune one (method, task, seed)."""

import json
from pathlib import Path

import torch

from tunetrace.config import MethodSpec, ModelSpec, TaskSpec
from tunetrace.logutil import setup_logging
from tunetrace.training import train_run

setup_logging(snakemake.log[0], capture_stderr=True)
torch.set_num_threads(snakemake.threads)
run_dir = Path(snakemake.params.run_dir)
train_run(
    ModelSpec.from_dict(json.loads(snakemake.params.model)),
    TaskSpec.from_dict(snakemake.wildcards.task, json.loads(snakemake.params.task)),
    MethodSpec.from_dict(snakemake.wildcards.method, json.loads(snakemake.params.method)),
    seed=int(snakemake.wildcards.seed),
    data_dir=Path(snakemake.input.train).parent,
    run_dir=run_dir,
)
Path(snakemake.output.checkpoints).mkdir(parents=True, exist_ok=True)

from tunetrace.lineage import record_lineage  # noqa: E402  (lineage: keep last)
record_lineage(snakemake)
