"""Adapter for rule train_run: fine-tune one (method, task, seed), resuming after a kill."""

import json
from pathlib import Path

import torch

from tunetrace.config import TrackingSpec
from tunetrace.guard.gates import enforce_gate
from tunetrace.logutil import setup_logging
from tunetrace.provenance.lineage import discard_records
from tunetrace.stages.train import predict_final
from tunetrace.training.jobcontrol import run_as_job
from tunetrace.training.launch import TrainingJob, run_training
from tunetrace.training.tracking import record_tracking, start_tracking

setup_logging(snakemake.log[0], capture_stderr=True)
run_as_job()  # dies with snakemake; Ctrl-C stops training at the next step and fails the job
discard_records(snakemake.output)  # no record may outlive its output if this job fails
enforce_gate(snakemake.input.get("gate"))  # a NO-GO gate with enforce stops here, before any training
torch.set_num_threads(snakemake.threads)
run_dir = Path(snakemake.output.metadata).parent
method, seed = json.loads(snakemake.params.method), int(snakemake.wildcards.seed)
job = TrainingJob(
    model=json.loads(snakemake.params.model),
    task_name=snakemake.wildcards.task,
    task=json.loads(snakemake.params.task),
    method_name=snakemake.wildcards.method,
    method=method,
    seed=seed,
    data_dir=str(Path(snakemake.input.train).parent),
    run_dir=str(run_dir),
    resume_dir=snakemake.params.resume_dir,
    representations=json.loads(snakemake.params.representations),
    reps_dir=snakemake.output.reps,
    sizing=json.loads(snakemake.params.sizing),
)
with start_tracking(TrackingSpec.from_dict(json.loads(snakemake.params.tracking)), job.method_name, job.task_name,
                    seed, run_dir, config={"method": method, "task": job.task_name, "seed": seed}) as tracker:
    run_training(job, threads=snakemake.threads, log_sinks=[tracker.log])
record_tracking(snakemake.output.metadata, tracker)
# The saved final model, loaded back in this process (imports and device warm), predicts the eval split.
predict_final(*job.specs(), data_dir=job.data_dir, run_dir=run_dir, out_path=snakemake.output.outputs)
Path(snakemake.output.checkpoints).mkdir(parents=True, exist_ok=True)
Path(snakemake.output.reps).mkdir(parents=True, exist_ok=True)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
