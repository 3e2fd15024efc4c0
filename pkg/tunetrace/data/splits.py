"""The held-out split, subsampling and the split-size check of the prepared data (no task type: the rows are
standardised already)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tunetrace import artifacts as A
from tunetrace.config import TaskSpec
from tunetrace.data.checks import DataError, check_columns


def stratified_split(frame: pd.DataFrame, fraction: float, seed: int,
                     by: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out round(fraction * n) rows, spread over strata in proportion (deterministic per seed).

    Rows are shuffled within each stratum and ranked by their relative position in it; the rows
    with the lowest positions across all strata are held out, so small strata are not rounded
    away and the total is exact.
    """
    rng = np.random.default_rng(seed)
    position = np.empty(len(frame))
    for _, idx in sorted(frame.groupby(by, sort=True).indices.items()):
        idx = np.array(sorted(idx))
        rng.shuffle(idx)
        position[idx] = (np.arange(len(idx)) + 0.5) / len(idx)
    order = np.lexsort((np.arange(len(frame)), position))
    mask = np.zeros(len(frame), dtype=bool)
    mask[order[: int(round(len(frame) * fraction))]] = True
    return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)


STRATUM_PREFIX = "stratum::"


def stratum_columns(train: pd.DataFrame, raw: pd.DataFrame, columns: list[str], origin: str) -> list[str]:
    """Copy the source's `stratify_by` columns onto the standardised rows (same order); their names."""
    check_columns(raw, list(columns), f"{origin} (source.stratify_by)")
    names = []
    for column in columns:
        train[STRATUM_PREFIX + column] = raw[column].map(lambda v: "" if v is None else str(v)).to_numpy()
        names.append(STRATUM_PREFIX + column)
    return names


def held_out(task: TaskSpec, evaluation: pd.DataFrame) -> dict[str, Any] | None:
    """How the eval split was carved from train (None when an eval file was given), with its ids."""
    source = task.source
    if source["eval"]:
        return None
    by = [c for c in ("label", "group") if c in evaluation] + list(source["stratify_by"])
    return {"fraction": source["eval_fraction"], "seed": source["split_seed"],
            "stratified_by": by, "ids": evaluation[A.COL_ID].astype(str).tolist()}


def subsample(train: pd.DataFrame, evaluation: pd.DataFrame, task: TaskSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    seed = int(task.source["split_seed"])
    if task.max_train_examples and len(train) > task.max_train_examples:
        train = train.sample(n=task.max_train_examples, random_state=seed).sort_index().reset_index(drop=True)
    if task.max_eval_examples and len(evaluation) > task.max_eval_examples:
        evaluation = evaluation.iloc[: task.max_eval_examples].reset_index(drop=True)
    return train, evaluation


def check_split_sizes(task: TaskSpec, train: pd.DataFrame, evaluation: pd.DataFrame, origin: str) -> None:
    """Both prepared splits need rows: a small source with no eval file can leave the held-out split empty
    (round(eval_fraction * rows) == 0), or the training split (when the hold-out takes every row)."""
    for split, frame, fix in (("training", train, "lower source.eval_fraction"),
                              ("eval", evaluation, "raise source.eval_fraction or set source.eval to an eval file")):
        if frame.empty:
            held = f" after holding out {task.source['eval_fraction']} of it" if not task.source["eval"] else ""
            raise DataError(f"{origin}: the {split} split of task '{task.name}' has no rows ({len(train)} training, "
                            f"{len(evaluation)} eval{held}); add rows, or {fix} (tasks.{task.name}.source)")


def distribution(frame: pd.DataFrame, column: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame[column].value_counts().sort_index().items()}
