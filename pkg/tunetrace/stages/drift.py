"""Stage of rule compute_drift: CKA and cosine of every saved step and layer of a run against the base
representations (analysis.drift), as a Parquet table and a heatmap."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from tunetrace.analysis.drift import drift_table, plot_cka_heatmap, write_parquet
from tunetrace.analysis.steps import RepresentationSpec

log = logging.getLogger(__name__)


def compute_drift(
    base_dir: str | os.PathLike,
    run_dir: str | os.PathLike,
    spec: RepresentationSpec,
    identity: Mapping[str, Any],
    out_table: str | os.PathLike,
    out_heatmap: str | os.PathLike,
    blas_threads: int = 1,
) -> pd.DataFrame:
    """Drift table of one run (Parquet) and its CKA heatmap (PNG)."""
    from threadpoolctl import threadpool_limits

    # The matrices are small (probe x hidden): threaded BLAS only adds overhead, and on a busy
    # machine spinning BLAS threads made this 5-8x slower than one thread.
    with threadpool_limits(limits=blas_threads):
        frame = drift_table(base_dir, run_dir, identity, spec.cka_batch_size)
    write_parquet(frame, out_table)
    title = f"{identity['method']} / {identity['task']} / seed {identity['seed']}: CKA to base"
    plot_cka_heatmap(frame, title, out_heatmap)
    log.info("drift of %s: %d steps x %d layers", run_dir, frame["step"].nunique(), frame["layer"].nunique())
    return frame
