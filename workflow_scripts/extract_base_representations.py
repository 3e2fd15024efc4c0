"""Adapter for rule extract_base_representations: step 0 of the pretrained model on the probe set."""

from pathlib import Path

from tunetrace.analysis.steps import RepresentationSpec
from tunetrace.config import ModelSpec, TaskSpec
from tunetrace.jobcontext import job
from tunetrace.stages.representations import extract_base_representations

with job(snakemake, torch_threads=True) as j:
    extract_base_representations(
        ModelSpec.from_dict(j.param("model")),
        TaskSpec.from_dict(j.wildcards.task, j.param("task")),
        RepresentationSpec.from_dict(j.param("representations")),
        data_dir=Path(j.input.eval).parent,
        out_dir=j.output.reps,
    )
