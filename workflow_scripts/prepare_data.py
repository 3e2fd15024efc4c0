"""Adapter for rule prepare_data: read, check and standardise one task's data."""

from pathlib import Path

from tunetrace.config import TaskSpec
from tunetrace.jobcontext import job
from tunetrace.stages.prepare import prepare_task_data

with job(snakemake) as j:
    prepare_task_data(TaskSpec.from_dict(j.wildcards.task, j.param("task")), Path(j.output.manifest).parent)
