"""The held-out split, subsampling and the split-size check of the prepared data (no task type: the rows are
standardised already)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tunetrace import artifacts as A
from tunetrace.config import TaskSpec
from tunetrace.data.checks import DataError, check_columns


def _positions(frame: pd.DataFrame, seed: int, by: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Each row's relative position in its shuffled stratum ((rank + 0.5) / size), and the shuffled strata."""
    rng = np.random.default_rng(seed)
    position = np.empty(len(frame))
    strata = []
    for _, idx in sorted(frame.groupby(by, sort=True).indices.items()):
        idx = np.array(sorted(idx))
        rng.shuffle(idx)
        position[idx] = (np.arange(len(idx)) + 0.5) / len(idx)
        strata.append(idx)
    return position, strata


def stratified_split(
    frame: pd.DataFrame, fraction: float, seed: int, by: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out round(fraction * n) rows, spread over strata in proportion (deterministic per seed).

    Rows are shuffled within each stratum and ranked by their relative position in it; the rows
    with the lowest positions across all strata are held out, so small strata are not rounded
    away and the total is exact.
    """
    position, _ = _positions(frame, seed, by)
    order = np.lexsort((np.arange(len(frame)), position))
    mask = np.zeros(len(frame), dtype=bool)
    mask[order[: int(round(len(frame) * fraction))]] = True
    return frame[~mask].reset_index(drop=True), frame[mask].reset_index(drop=True)


def stratified_sample(frame: pd.DataFrame, count: int, seed: int, by: list[str]) -> pd.DataFrame:
    """`count` rows spread over the strata of `by` in proportion, in file order (deterministic per seed).

    Ranked as in `stratified_split`, except that the first shuffled row of every stratum comes first
    (largest strata first when `count` is below the number of strata), so a stratum smaller than
    len(frame) / count still keeps one row whenever count allows.
    """
    if count >= len(frame):
        return frame.reset_index(drop=True)
    position, strata = _positions(frame, seed, by)
    for idx in strata:
        # below every regular position; larger strata slightly lower, so they win when rows are scarce
        position[idx[0]] = -len(idx) / (len(frame) + 1)
    order = np.lexsort((np.arange(len(frame)), position))
    return frame.iloc[np.sort(order[:count])].reset_index(drop=True)


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
    return {
        "fraction": source["eval_fraction"],
        "seed": source["split_seed"],
        "stratified_by": by,
        "ids": evaluation[A.COL_ID].astype(str).tolist(),
    }


def sample_strata(frame: pd.DataFrame) -> list[str]:
    """The columns an eval sample is stratified by: the label, and the group when the task has a group_field."""
    return [c for c in (A.COL_LABEL, A.COL_GROUP) if c in frame]


def subsample(train: pd.DataFrame, evaluation: pd.DataFrame, task: TaskSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """At most max_train_examples training rows (seeded random) and max_eval_examples eval rows (seeded,
    stratified by label and group, so a capped eval split keeps the label and group shares of the full one)."""
    seed = int(task.source["split_seed"])
    if task.max_train_examples and len(train) > task.max_train_examples:
        train = train.sample(n=task.max_train_examples, random_state=seed).sort_index().reset_index(drop=True)
    if task.max_eval_examples and len(evaluation) > task.max_eval_examples:
        by = sample_strata(evaluation)
        if not by:  # no label or group: one stratum, a seeded random sample
            evaluation = evaluation.assign(**{STRATUM_PREFIX: ""})
            by = [STRATUM_PREFIX]
        evaluation = stratified_sample(evaluation, task.max_eval_examples, seed, by)
        evaluation = evaluation.drop(columns=[STRATUM_PREFIX], errors="ignore")
    return train, evaluation


def eval_sample(task: TaskSpec, rows_before: int, evaluation: pd.DataFrame) -> dict[str, Any] | None:
    """How max_eval_examples sampled the eval split (None when it did not)."""
    if not task.max_eval_examples or rows_before <= task.max_eval_examples:
        return None
    return {
        "max_eval_examples": task.max_eval_examples,
        "from_rows": rows_before,
        "seed": int(task.source["split_seed"]),
        "stratified_by": sample_strata(evaluation),
    }


def check_split_sizes(task: TaskSpec, train: pd.DataFrame, evaluation: pd.DataFrame, origin: str) -> None:
    """Both prepared splits need rows: a small source with no eval file can leave the held-out split empty
    (round(eval_fraction * rows) == 0), or the training split (when the hold-out takes every row)."""
    for split, frame, fix in (
        ("training", train, "lower source.eval_fraction"),
        ("eval", evaluation, "raise source.eval_fraction or set source.eval to an eval file"),
    ):
        if frame.empty:
            held = f" after holding out {task.source['eval_fraction']} of it" if not task.source["eval"] else ""
            raise DataError(
                f"{origin}: the {split} split of task '{task.name}' has no rows ({len(train)} training, "
                f"{len(evaluation)} eval{held}); add rows, or {fix} (tasks.{task.name}.source)"
            )


def distribution(frame: pd.DataFrame, column: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame[column].value_counts().sort_index().items()}
