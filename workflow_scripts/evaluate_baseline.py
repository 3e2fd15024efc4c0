"""Adapter for rule evaluate_baseline: the task type's baselines (the pretrained model before fine-tuning)."""

import json
from pathlib import Path

import torch

from tunetrace.config import EvalSpec, ModelSpec, TaskSpec
from tunetrace.logutil import setup_logging
from tunetrace.provenance.lineage import discard_records
from tunetrace.stages.baseline import evaluate_baseline

setup_logging(snakemake.log[0], capture_stderr=True)
discard_records(snakemake.output)  # no record may outlive its output if this job fails
torch.set_num_threads(snakemake.threads)
evaluate_baseline(
    ModelSpec.from_dict(json.loads(snakemake.params.model)),
    TaskSpec.from_dict(snakemake.wildcards.task, json.loads(snakemake.params.task)),
    EvalSpec.from_dict(json.loads(snakemake.params.evaluation)),
    data_dir=Path(snakemake.input.train).parent,
    out_path=snakemake.output.metrics,
)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
