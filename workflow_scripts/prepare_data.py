"""Adapter for rule prepare_data: read, check and standardise one task's data."""

import json
from pathlib import Path

from tunetrace.config import TaskSpec
from tunetrace.logutil import setup_logging
from tunetrace.provenance.lineage import discard_records
from tunetrace.stages.prepare import prepare_task_data

setup_logging(snakemake.log[0], capture_stderr=True)
discard_records(snakemake.output)  # no record may outlive its output if this job fails
task = TaskSpec.from_dict(snakemake.wildcards.task, json.loads(snakemake.params.task))
prepare_task_data(task, Path(snakemake.output.manifest).parent)

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
