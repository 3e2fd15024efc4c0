"""Adapter for rule plot_drift: final-step CKA per layer of one task, methods side by side."""

from tunetrace.jobcontext import job
from tunetrace.stages.plot_drift import plot_task_drift

with job(snakemake, check_inputs=True) as j:
    plot_task_drift(list(j.input.tables), j.param("methods"), j.wildcards.task, j.output.plot)
