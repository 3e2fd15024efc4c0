"""Adapter for rule plot_drift: final-step CKA per layer of one task, methods side by side."""

import json

from tunetrace.logutil import setup_logging
from tunetrace.provenance.integrity import check_inputs
from tunetrace.provenance.lineage import discard_records
from tunetrace.stages.plot_drift import plot_task_drift

setup_logging(snakemake.log[0], capture_stderr=True)
discard_records(snakemake.output)  # no record may outlive its output if this job fails
check_inputs(snakemake.input)  # every input is what its rule wrote, before any is read
plot_task_drift(list(snakemake.input.tables), json.loads(snakemake.params.methods), snakemake.wildcards.task,
                snakemake.output.plot)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
