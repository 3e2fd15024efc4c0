"""Adapter for rule compare_runs: results/comparison.json and comparison.md."""

import json

from tunetrace.guard.validation import enforce_strict
from tunetrace.logutil import setup_logging
from tunetrace.provenance.integrity import check_inputs
from tunetrace.provenance.lineage import discard_records
from tunetrace.stages.compare import compare_runs

setup_logging(snakemake.log[0], capture_stderr=True)
discard_records(snakemake.output)  # no record may outlive its output if this job fails
check_inputs(snakemake.input)  # every input is what its rule wrote, before any is read
inputs = {name: list(snakemake.input[name])
          for name in ("baselines", "evals", "runs", "merge_checks", "manifests", "validations")}
enforce_strict(inputs["validations"], json.loads(snakemake.params.validation)["strict"])  # before anything is written
inputs.update({name: list(snakemake.input.get(name, [])) for name in ("drift", "weights", "drift_plots")})
compare_runs(json.loads(snakemake.params.study), inputs, False, snakemake.output.comparison, snakemake.output.markdown)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
