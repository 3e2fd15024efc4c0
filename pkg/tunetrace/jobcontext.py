"""The job context of every workflow script: `with job(snakemake) as j:` around its one call into
`tunetrace.stages`.

On entry, in this order: the job's log (`snakemake.log[0]`, file descriptor 2 included, so tracebacks and
library warnings land there), an optional start hook (train_run's `run_as_job`), with `check_inputs` the
inputs against their records (before any is read), an optional `refuse` check of the job (compare_runs: strict
mode's critical flags), then the removal of the lineage records of the outputs it rewrites (no record may
outlive its output if the job fails). A job refused before that point leaves its previous outputs and their
records standing. With `torch_threads`, torch's thread count (only
jobs that run a model: importing torch costs a light job more than its work). On success the lineage of every
output is recorded; on an exception nothing is, and the exception fails the job.

The snakemake object is taken duck-typed (log, input, output, params, wildcards, threads): the library never
imports snakemake.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from tunetrace.config import StudyStopped
from tunetrace.logutil import setup_logging
from tunetrace.provenance.integrity import check_inputs as verify_inputs
from tunetrace.provenance.lineage import discard_records, record_lineage


class Job:
    """The running job as its adapter reads it: snakemake's object, with the JSON params decoded."""

    def __init__(self, smk: Any) -> None:
        self.smk = smk
        self.input, self.output, self.wildcards = smk.input, smk.output, smk.wildcards
        self.params, self.threads = smk.params, smk.threads

    def param(self, name: str) -> Any:
        """A params entry that the rule passes as canonical JSON (rules/params.smk), decoded."""
        return json.loads(getattr(self.params, name))

    @property
    def seed(self) -> int:
        return int(self.wildcards.seed)


@contextlib.contextmanager
def _stop_without_traceback() -> Iterator[None]:
    """A StudyStopped (validation.strict) is a verdict, not a crash: its message is the whole story, so the job
    logs it and exits 1 with no traceback."""
    try:
        yield
    except StudyStopped as stop:
        logging.getLogger("tunetrace").error("%s", stop)
        raise SystemExit(1) from None


@contextlib.contextmanager
def job(
    smk: Any,
    *,
    torch_threads: bool = False,
    check_inputs: bool = False,
    on_start: Callable[[], None] | None = None,
    refuse: Callable[[Job], None] | None = None,
) -> Iterator[Job]:
    """Set the job up, yield it, and record the lineage of its outputs when the body returned."""
    setup_logging(smk.log[0], capture_stderr=True)
    if on_start is not None:
        on_start()
    if check_inputs:
        verify_inputs(smk.input)
    if refuse is not None:
        with _stop_without_traceback():
            refuse(Job(smk))
    discard_records(smk.output)
    if torch_threads:
        import torch

        torch.set_num_threads(smk.threads)
    with _stop_without_traceback():
        yield Job(smk)
    record_lineage(smk)
