"""Adapter for rule evaluate_run: metrics, group error rates and predictions of a run."""

import json
from pathlib import Path

import torch

from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec
from tunetrace.evaluation.evaluate import evaluate_run
from tunetrace.logutil import setup_logging

setup_logging(snakemake.log[0], capture_stderr=True)
torch.set_num_threads(snakemake.threads)
evaluate_run(
    ModelSpec.from_dict(json.loads(snakemake.params.model)),
    TaskSpec.from_dict(snakemake.wildcards.task, json.loads(snakemake.params.task)),
    MethodSpec.from_dict(snakemake.wildcards.method, json.loads(snakemake.params.method)),
    EvalSpec.from_dict(json.loads(snakemake.params.evaluation)),
    seed=int(snakemake.wildcards.seed),
    data_dir=Path(snakemake.input.eval).parent,
    run_dir=Path(snakemake.input.final).parent,
    out_dir=Path(snakemake.output.metrics).parent,
)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
