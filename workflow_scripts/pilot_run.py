"""Adapter for rule pilot_run: a short pilot of the method, evaluated on the eval split."""

from pathlib import Path

from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from tunetrace.guard.gates import GateSpec
from tunetrace.jobcontext import job
from tunetrace.stages.pilot import run_pilot

with job(snakemake, torch_threads=True) as j:
    run_pilot(
        ModelSpec.from_dict(j.param("model")),
        TaskSpec.from_dict(j.wildcards.task, j.param("task")),
        MethodSpec.from_dict(j.wildcards.method, j.param("method")),
        GateSpec.from_method({"gate": j.param("pilot")}),
        EvalSpec.from_dict(j.param("evaluation")),
        seed=j.seed,
        data_dir=Path(j.input.train).parent,
        out_dir=Path(j.output.metrics).parent,
    )
