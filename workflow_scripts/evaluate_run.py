"""Adapter for rule evaluate_run: metrics, group error rates and predictions of a run, scored from the raw
outputs its training job wrote (the saved final model is not loaded again here)."""

import json
from pathlib import Path

from tunetrace.config import EvalSpec, MethodSpec, TaskSpec
from tunetrace.logutil import setup_logging
from tunetrace.provenance.lineage import discard_records
from tunetrace.stages.evaluate import score_run

setup_logging(snakemake.log[0], capture_stderr=True)
discard_records(snakemake.output)  # no record may outlive its output if this job fails
score_run(
    TaskSpec.from_dict(snakemake.wildcards.task, json.loads(snakemake.params.task)),
    MethodSpec.from_dict(snakemake.wildcards.method, json.loads(snakemake.params.method)),
    EvalSpec.from_dict(json.loads(snakemake.params.evaluation)),
    seed=int(snakemake.wildcards.seed),
    data_dir=Path(snakemake.input.eval).parent,
    outputs_path=snakemake.input.outputs,
    out_dir=Path(snakemake.output.metrics).parent,
)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
