"""Adapter for rule compare_runs: results/comparison.json and comparison.md."""

import json

from tunetrace.logutil import setup_logging
from tunetrace.provenance.lineage import discard_records
from tunetrace.reporting.comparison import compare_runs, refuse_before_writing

setup_logging(snakemake.log[0], capture_stderr=True)
inputs = {name: list(snakemake.input.get(name, [])) for name in
          ("baselines", "evals", "runs", "merge_checks", "manifests", "validations", "drift", "weights", "drift_plots")}
# a forged input or (strict) a critical flag stops the job here: the previous comparison and its record stand
refuse_before_writing(inputs, json.loads(snakemake.params.validation)["strict"])
discard_records(snakemake.output)  # no record may outlive its output if this job fails
compare_runs(json.loads(snakemake.params.study), inputs, snakemake.output.comparison, snakemake.output.markdown)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
