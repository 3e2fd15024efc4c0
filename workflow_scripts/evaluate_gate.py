"""Adapter for rule evaluate_gate: GO/NO-GO of the pilot against the baseline."""

import json

from tunetrace.guard.gates import GateSpec
from tunetrace.logutil import setup_logging
from tunetrace.provenance.lineage import discard_records
from tunetrace.stages.gate import evaluate_gate

setup_logging(snakemake.log[0], capture_stderr=True)
discard_records(snakemake.output)  # no record may outlive its output if this job fails
evaluate_gate(
    GateSpec.from_method({"gate": json.loads(snakemake.params.gate)}),
    pilot_metrics_path=snakemake.input.pilot_metrics,
    pilot_run_path=snakemake.input.pilot_run,
    baseline_path=snakemake.input.baseline,
    out_path=snakemake.output.gate,
)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
