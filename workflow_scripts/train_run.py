"""Adapter for rule train_run: fine-tune one (method, task, seed)."""

import json
from pathlib import Path

import torch

from tunetrace.config import MethodSpec, ModelSpec, TaskSpec, TrackingSpec
from tunetrace.gates import check_gates
from tunetrace.logutil import setup_logging
from tunetrace.tracking import record_tracking, start_tracking
from tunetrace.training import train_run

setup_logging(snakemake.log[0], capture_stderr=True)
check_gates(snakemake.input.get("gate"))  # a NO-GO gate with enforce stops here, before any training
torch.set_num_threads(snakemake.threads)
run_dir = Path(snakemake.params.run_dir)
method_params = json.loads(snakemake.params.method)
method = MethodSpec.from_dict(snakemake.wildcards.method, method_params)
task = TaskSpec.from_dict(snakemake.wildcards.task, json.loads(snakemake.params.task))
seed = int(snakemake.wildcards.seed)
with start_tracking(TrackingSpec.from_dict(json.loads(snakemake.params.tracking)), method.name, task.name, seed,
                    run_dir, config={"method": method_params, "task": task.name, "seed": seed}) as tracker:
    train_run(
        ModelSpec.from_dict(json.loads(snakemake.params.model)),
        task,
        method,
        seed=seed,
        data_dir=Path(snakemake.input.train).parent,
        run_dir=run_dir,
        log_sinks=[tracker.log],
    )
record_tracking(snakemake.output.metadata, tracker)
Path(snakemake.output.checkpoints).mkdir(parents=True, exist_ok=True)
