"""Adapter for rule pilot_run: a short pilot of the method (launched as train_run launches it), evaluated on the
eval split."""

from pathlib import Path

from tunetrace.config import EvalSpec
from tunetrace.guard.gates import GateSpec
from tunetrace.jobcontext import job
from tunetrace.stages.pilot import run_pilot
from tunetrace.training.launch import TrainingJob

with job(snakemake, torch_threads=True) as j:
    run_pilot(
        TrainingJob.of_rule(j, Path(j.output.metrics).parent),
        GateSpec.from_method({"gate": j.param("pilot")}),
        EvalSpec.from_dict(j.param("evaluation")),
        threads=j.threads,
    )
