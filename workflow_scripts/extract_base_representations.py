"""Adapter for rule extract_base_representations: step 0 of the pretrained model on the probe set."""

import json
from pathlib import Path

import torch

from tunetrace.analysis.steps import RepresentationSpec
from tunetrace.config import ModelSpec, TaskSpec
from tunetrace.logutil import setup_logging
from tunetrace.provenance.lineage import discard_records
from tunetrace.stages.representations import extract_base_representations

setup_logging(snakemake.log[0], capture_stderr=True)
discard_records(snakemake.output)  # no record may outlive its output if this job fails
torch.set_num_threads(snakemake.threads)
extract_base_representations(
    ModelSpec.from_dict(json.loads(snakemake.params.model)),
    TaskSpec.from_dict(snakemake.wildcards.task, json.loads(snakemake.params.task)),
    RepresentationSpec.from_dict(json.loads(snakemake.params.representations)),
    data_dir=Path(snakemake.input.eval).parent,
    out_dir=snakemake.output.reps,
)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
