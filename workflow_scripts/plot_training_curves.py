"""Adapter for rule plot_training_curves: train and eval loss over steps of one task, flagged runs marked."""

from tunetrace.jobcontext import job
from tunetrace.stages.plot_training_curves import plot_task_curves

with job(snakemake, check_inputs=True) as j:
    plot_task_curves(list(j.input.logs), list(j.input.validations), j.wildcards.task, j.output.plot)
