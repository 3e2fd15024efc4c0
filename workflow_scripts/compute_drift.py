"""Adapter for rule compute_drift: CKA and cosine of every saved step and layer against the base."""

import json

from tunetrace.analysis.steps import RepresentationSpec
from tunetrace.logutil import setup_logging
from tunetrace.provenance.integrity import check_inputs
from tunetrace.provenance.lineage import discard_records
from tunetrace.stages.drift import compute_drift

setup_logging(snakemake.log[0], capture_stderr=True)
discard_records(snakemake.output)  # no record may outlive its output if this job fails
check_inputs(snakemake.input)  # every input is what its rule wrote, before any is read
compute_drift(
    base_dir=snakemake.input.base,
    run_dir=snakemake.input.reps,
    spec=RepresentationSpec.from_dict(json.loads(snakemake.params.representations)),
    identity={"method": snakemake.wildcards.method, "task": snakemake.wildcards.task,
              "seed": int(snakemake.wildcards.seed)},
    out_table=snakemake.output.table,
    out_heatmap=snakemake.output.heatmap,
)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
