"""Facts of the environment a job ran in, for run metadata and lineage."""

from __future__ import annotations

import os
from typing import Any


def cluster_environment() -> dict[str, Any]:
    """Scheduler facts of the running job (Slurm job id, GPUs), for run metadata."""
    keys = (
        "SLURM_JOB_ID",
        "SLURM_JOB_NAME",
        "SLURM_JOB_PARTITION",
        "SLURM_GPUS_ON_NODE",
        "SLURM_JOB_GPUS",
        "SLURM_CPUS_PER_TASK",
        "CUDA_VISIBLE_DEVICES",
    )
    return {k.lower(): os.environ[k] for k in keys if k in os.environ}
