"""Stage of rule prepare_data: read, check and standardise one task's data (the task type's `standardise`), and
write the prepared splits and their manifest.

Prepared splits are Parquet with standard columns (see `artifacts.COL_*`), so nothing
downstream needs to know the source's column names or quirks.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from tunetrace import artifacts as A
from tunetrace.config import TaskSpec
from tunetrace.data.checks import DataError
from tunetrace.data.readers import read_hub_split, read_table
from tunetrace.data.splits import (
    STRATUM_PREFIX,
    check_split_sizes,
    distribution,
    eval_sample,
    held_out,
    stratified_split,
    stratum_columns,
    subsample,
)
from tunetrace.fileio import sha256_file, write_json
from tunetrace.tasks.dispatch import get_task_type

log = logging.getLogger(__name__)


@dataclass
class Sources:
    """A task's raw train and eval tables as read (eval None: carved from train), where they came from."""

    train: pd.DataFrame
    eval: pd.DataFrame | None
    origin_train: str
    origin_eval: str
    files: list[Path] = field(default_factory=list)
    hub: list[dict[str, Any]] = field(default_factory=list)  # the hub splits read (id, split, rows, fingerprint)


def read_sources(task: TaskSpec, workdir: str | os.PathLike = ".") -> Sources:
    """Read a task's train and eval tables: local files, or splits of a hub dataset."""
    source = task.source
    if source["format"] == "hub":
        key = f"tasks.{task.name}.source"
        train_raw = read_hub_split(source["hub_id"], source["train"] or "train", key)
        eval_raw = read_hub_split(source["hub_id"], source["eval"], key) if source["eval"] else None
        origin = f"hub:{source['hub_id']}"
        return Sources(
            train_raw, eval_raw, origin, origin, hub=[f.attrs["hub"] for f in (train_raw, eval_raw) if f is not None]
        )
    train_path = Path(workdir) / source["train"]
    sources = Sources(
        read_table(train_path, source["format"], source["quoting"]), None, str(train_path), "", files=[train_path]
    )
    if source["eval"]:
        eval_path = Path(workdir) / source["eval"]
        sources.files.append(eval_path)
        sources.eval = read_table(eval_path, source["format"], source["quoting"])
        sources.origin_eval = str(eval_path)
    return sources


def standardise_splits(task: TaskSpec, sources: Sources) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The standardised train and eval splits (the eval split held out of train when no eval table was read)."""
    source = task.source
    task_type = get_task_type(task.type)
    train = task_type.standardise(sources.train, task, sources.origin_train, "train")
    if sources.eval is not None:
        return train, task_type.standardise(sources.eval, task, sources.origin_eval, "eval")
    by = [c for c in (A.COL_LABEL, A.COL_GROUP) if c in train]
    by += stratum_columns(train, sources.train, source["stratify_by"], sources.origin_train)
    if not by:  # no label, group or listed column: one stratum
        train[STRATUM_PREFIX] = ""
        by = [STRATUM_PREFIX]
    train, evaluation = stratified_split(train, source["eval_fraction"], source["split_seed"], by)
    train, evaluation = (f.drop(columns=[c for c in f if c.startswith(STRATUM_PREFIX)]) for f in (train, evaluation))
    return train, evaluation


def load_splits(task: TaskSpec, workdir: str | os.PathLike = ".") -> tuple[pd.DataFrame, pd.DataFrame, list[Path]]:
    """Read and standardise the train and eval splits of a task; return them and the source files."""
    sources = read_sources(task, workdir)
    return *standardise_splits(task, sources), sources.files


def check_training_labels(task: TaskSpec, train: pd.DataFrame, origin: str) -> None:
    """Stop on a training split no model can learn the task's classes from: fewer than
    task.min_train_rows_per_label rows of some label, or a single class (task types whose rows carry a class
    label; counted after the held-out split and max_train_examples). allow_degenerate_data makes it a warning."""
    labels = get_task_type(task.type).class_labels(task)
    if labels is None:
        return
    counts = {name: int((train[A.COL_LABEL] == index).sum()) for index, name in enumerate(labels)}
    present = [name for name, count in counts.items() if count]
    short = [name for name, count in counts.items() if count < task.min_train_rows_per_label]
    if len(present) > 1 and not short:
        return
    problems = [f"a single class ({present[0]!r})"] if len(present) == 1 else []
    problems.append(f"fewer than {task.min_train_rows_per_label} rows of {', '.join(map(repr, short))}")
    key = f"tasks.{task.name}"
    rows = f"{len(train)} row" + ("" if len(train) == 1 else "s")
    message = (
        f"{origin}: the training split of task '{task.name}' has {rows}, per label {counts}: "
        f"{' and '.join(problems)}. Add training rows of every label (at least "
        f"{task.min_train_rows_per_label} each) or lower {key}.min_train_rows_per_label; for a smoke test "
        f"on a handful of rows set {key}.allow_degenerate_data: true"
    )
    if not task.allow_degenerate_data:
        raise DataError(message)
    log.warning("%s (allowed by %s.allow_degenerate_data)", message, key)


def prepare_task_data(task: TaskSpec, out_dir: str | os.PathLike, workdir: str | os.PathLike = ".") -> dict[str, Any]:
    """Write train/eval Parquet and a manifest (row counts, label distribution, source hashes)."""
    sources = read_sources(task, workdir)
    train, evaluation = standardise_splits(task, sources)
    files = sources.files
    eval_rows = len(evaluation)
    train, evaluation = subsample(train, evaluation, task)
    # checked before anything is written: a refused task leaves no output directory behind
    origin = str(files[0]) if files else f"hub:{task.source['hub_id']}"
    check_split_sizes(task, train, evaluation, origin)
    check_training_labels(task, train, origin)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train.to_parquet(out / A.TRAIN_SPLIT, index=False)
    evaluation.to_parquet(out / A.EVAL_SPLIT, index=False)
    manifest = {
        "task": task.name,
        "type": task.type,
        "labels": task.label_names,
        "sources": [{"path": str(p), "sha256": sha256_file(p), "bytes": p.stat().st_size} for p in files],
        "hub": sources.hub or None,
        "splits": {
            name: {
                "rows": int(len(frame)),
                "label_distribution": distribution(frame, A.COL_LABEL_NAME) if A.COL_LABEL_NAME in frame else None,
                "group_distribution": distribution(frame, A.COL_GROUP) if A.COL_GROUP in frame else None,
                "sha256": sha256_file(out / fname),
            }
            for name, frame, fname in (("train", train, A.TRAIN_SPLIT), ("eval", evaluation, A.EVAL_SPLIT))
        },
    }
    manifest["held_out"] = held_out(task, evaluation)
    manifest["eval_sample"] = eval_sample(task, eval_rows, evaluation)
    write_json(out / A.DATA_MANIFEST, manifest)
    log.info("prepared %s: %d train, %d eval rows", task.name, len(train), len(evaluation))
    return manifest
