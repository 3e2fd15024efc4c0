"""Adapter for rule compute_drift: CKA and cosine of every saved step and layer against the base."""

from tunetrace.analysis.steps import RepresentationSpec
from tunetrace.jobcontext import job
from tunetrace.stages.drift import compute_drift

with job(snakemake, check_inputs=True) as j:
    compute_drift(
        base_dir=j.input.base,
        run_dir=j.input.reps,
        spec=RepresentationSpec.from_dict(j.param("representations")),
        identity={"method": j.wildcards.method, "task": j.wildcards.task, "seed": j.seed},
        out_table=j.output.table,
        out_heatmap=j.output.heatmap,
    )
