"""Stage of rule plot_drift: the final-step CKA per layer of one task, methods side by side."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import pandas as pd

from tunetrace.analysis.drift import plot_final_cka


def plot_task_drift(
    tables: Sequence[str | os.PathLike], method_types: Mapping[str, str], task: str, out_path: str | os.PathLike
) -> None:
    """The side-by-side final-step CKA plot of one task from its runs' drift tables."""
    frame = pd.concat([pd.read_parquet(p) for p in tables], ignore_index=True)
    plot_final_cka(frame, method_types, f"{task}: CKA to base per layer at the final step", out_path)
