"""Adapter for rule evaluate_gate: GO/NO-GO of the pilot against the baseline."""

from tunetrace.guard.gates import GateSpec
from tunetrace.jobcontext import job
from tunetrace.stages.gate import evaluate_gate

with job(snakemake) as j:
    evaluate_gate(
        GateSpec.from_method({"gate": j.param("gate")}),
        pilot_metrics_path=j.input.pilot_metrics,
        pilot_run_path=j.input.pilot_run,
        baseline_path=j.input.baseline,
        out_path=j.output.gate,
    )
