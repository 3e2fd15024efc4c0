"""Read task data from local files (or the hub), check it, and write prepared splits.

Prepared splits are Parquet with standard columns (see `artifacts.COL_*`), so nothing
downstream needs to know the source's column names or quirks.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunetrace import artifacts as A
from tunetrace.config import TaskSpec
from tunetrace.data.checks import DataError, check_columns
from tunetrace.fileio import sha256_file, write_json
from tunetrace.tasks.dispatch import get_task_type

log = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}


def infer_format(path: str | os.PathLike, declared: str = "auto") -> str:
    """The file format: declared, or from the extension."""
    if declared != "auto":
        return declared
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DataError(f"{path}: cannot tell the format from '{suffix}'; "
                        "set source.format to one of csv, tsv, jsonl, parquet")
    return FORMATS[suffix]


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")  # GLUE exports often start with a BOM
    except UnicodeDecodeError as err:
        row = raw[: err.start].count(b"\n") + 1
        raise DataError(
            f"{path}: line {row}: bytes that are not UTF-8 at offset {err.start} ({err.reason}); "
            "re-encode the file as UTF-8"
        ) from err


def _read_delimited(path: Path, sep: str, quoting: str) -> pd.DataFrame:
    no_quotes = quoting == "none" or (quoting == "auto" and sep == "\t")
    text = _decode(path)
    try:
        return pd.read_csv(
            io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
            quoting=csv.QUOTE_NONE if no_quotes else csv.QUOTE_MINIMAL,
        )
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{path}: the file is empty; it needs a header row and at least one example") from err
    except pd.errors.ParserError as err:
        raise DataError(f"{path}: cannot parse as {'TSV' if sep == chr(9) else 'CSV'} ({err})") from err


def _read_jsonl(path: Path) -> pd.DataFrame:
    rows = []
    for number, line in enumerate(_decode(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: line {number}: not valid JSON ({err.msg})") from err
    return pd.DataFrame(rows)


def load_squad_json(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Flatten a SQuAD JSON file to rows: id, title, context, question, answers (texts), answer_starts."""
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    rows = []
    for article in document["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = [] if qa.get("is_impossible") else qa.get("answers", [])
                rows.append({"id": qa["id"], "title": article.get("title", ""), "context": paragraph["context"],
                             "question": qa["question"], "answers": [a["text"] for a in answers],
                             "answer_starts": [int(a["answer_start"]) for a in answers]})
    return rows


def _read_squad(path: Path) -> pd.DataFrame:
    """A SQuAD v1/v2 JSON file as rows: id, title, context, question, answers ([{text, answer_start}] as JSON)."""
    rows = load_squad_json(path)
    for row in rows:
        starts = row.pop("answer_starts")
        row["answers"] = json.dumps([{"text": t, "answer_start": s}
                                     for t, s in zip(row["answers"], starts, strict=True)])
    return pd.DataFrame(rows)


def read_table(path: str | os.PathLike, fmt: str = "auto", quoting: str = "auto") -> pd.DataFrame:
    """Read one data file into a DataFrame of strings (csv/tsv) or native types (jsonl/parquet)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty; it needs a header row and at least one example")
    fmt = infer_format(path, fmt)
    if fmt == "csv":
        frame = _read_delimited(path, ",", quoting)
    elif fmt == "tsv":
        frame = _read_delimited(path, "\t", quoting)
    elif fmt == "jsonl":
        frame = _read_jsonl(path)
    elif fmt == "parquet":
        frame = pd.read_parquet(path)
    elif fmt == "squad":
        frame = _read_squad(path)
    else:
        raise DataError(f"{path}: unsupported format '{fmt}'")
    if frame.empty:
        raise DataError(f"{path}: no examples (only a header, or blank lines)")
    return frame


def read_hub_split(hub_id: str, split: str) -> pd.DataFrame:
    """Load a hub dataset split; a clear error when offline or without `datasets`."""
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        raise DataError(
            f"hub dataset '{hub_id}' cannot be fetched: HF_HUB_OFFLINE is set (no network). "
            "Download it once and point source.train/source.eval at local files"
        )
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError as err:
        raise DataError(f"hub dataset '{hub_id}' needs the `datasets` package: pip install datasets") from err
    try:
        return datasets.load_dataset(hub_id, split=split).to_pandas()
    except Exception as err:  # noqa: BLE001 - any hub failure becomes one clear message
        raise DataError(f"hub dataset '{hub_id}' split '{split}' could not be loaded ({err})") from err


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


def _distribution(frame: pd.DataFrame, column: str) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame[column].value_counts().sort_index().items()}


def load_splits(task: TaskSpec, workdir: str | os.PathLike = ".") -> tuple[pd.DataFrame, pd.DataFrame, list[Path]]:
    """Read and standardise the train and eval splits of a task; return them and the source files."""
    source = task.source
    if source["format"] == "hub":
        train_raw = read_hub_split(source["hub_id"], source["train"] or "train")
        eval_raw = read_hub_split(source["hub_id"], source["eval"]) if source["eval"] else None
        files: list[Path] = []
        origin_train, origin_eval = f"hub:{source['hub_id']}", f"hub:{source['hub_id']}"
    else:
        train_path = Path(workdir) / source["train"]
        files = [train_path]
        train_raw = read_table(train_path, source["format"], source["quoting"])
        origin_train = str(train_path)
        eval_raw = None
        if source["eval"]:
            eval_path = Path(workdir) / source["eval"]
            files.append(eval_path)
            eval_raw = read_table(eval_path, source["format"], source["quoting"])
            origin_eval = str(eval_path)
    task_type = get_task_type(task.type)
    train = task_type.standardise(train_raw, task, origin_train, "train")
    if eval_raw is None:
        by = [c for c in (A.COL_LABEL, A.COL_GROUP) if c in train]
        by += _stratum_columns(train, train_raw, source["stratify_by"], origin_train)
        if not by:  # no label, group or listed column: one stratum
            train[STRATUM_PREFIX] = ""
            by = [STRATUM_PREFIX]
        train, evaluation = stratified_split(train, source["eval_fraction"], source["split_seed"], by)
        train, evaluation = (f.drop(columns=[c for c in f if c.startswith(STRATUM_PREFIX)])
                             for f in (train, evaluation))
    else:
        evaluation = task_type.standardise(eval_raw, task, origin_eval, "eval")
    return train, evaluation, files


STRATUM_PREFIX = "stratum::"


def _stratum_columns(train: pd.DataFrame, raw: pd.DataFrame, columns: list[str], origin: str) -> list[str]:
    """Copy the source's `stratify_by` columns onto the standardised rows (same order); their names."""
    check_columns(raw, list(columns), f"{origin} (source.stratify_by)")
    names = []
    for column in columns:
        train[STRATUM_PREFIX + column] = raw[column].map(lambda v: "" if v is None else str(v)).to_numpy()
        names.append(STRATUM_PREFIX + column)
    return names


def _held_out(task: TaskSpec, evaluation: pd.DataFrame) -> dict[str, Any] | None:
    """How the eval split was carved from train (None when an eval file was given), with its ids."""
    source = task.source
    if source["eval"]:
        return None
    by = [c for c in ("label", "group") if c in evaluation] + list(source["stratify_by"])
    return {"fraction": source["eval_fraction"], "seed": source["split_seed"],
            "stratified_by": by, "ids": evaluation[A.COL_ID].astype(str).tolist()}


def _subsample(train: pd.DataFrame, evaluation: pd.DataFrame, task: TaskSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
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
    message = (f"{origin}: the training split of task '{task.name}' has {rows}, per label {counts}: "
               f"{' and '.join(problems)}. Add training rows of every label (at least "
               f"{task.min_train_rows_per_label} each) or lower {key}.min_train_rows_per_label; for a smoke test "
               f"on a handful of rows set {key}.allow_degenerate_data: true")
    if not task.allow_degenerate_data:
        raise DataError(message)
    log.warning("%s (allowed by %s.allow_degenerate_data)", message, key)


def prepare_task_data(task: TaskSpec, out_dir: str | os.PathLike, workdir: str | os.PathLike = ".") -> dict[str, Any]:
    """Write train/eval Parquet and a manifest (row counts, label distribution, source hashes)."""
    train, evaluation, files = load_splits(task, workdir)
    train, evaluation = _subsample(train, evaluation, task)
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
        "splits": {
            name: {
                "rows": int(len(frame)),
                "label_distribution": _distribution(frame, A.COL_LABEL_NAME) if A.COL_LABEL_NAME in frame else None,
                "group_distribution": _distribution(frame, A.COL_GROUP) if A.COL_GROUP in frame else None,
                "sha256": sha256_file(out / fname),
            }
            for name, frame, fname in (("train", train, A.TRAIN_SPLIT), ("eval", evaluation, A.EVAL_SPLIT))
        },
    }
    manifest["held_out"] = _held_out(task, evaluation)
    write_json(out / A.DATA_MANIFEST, manifest)
    log.info("prepared %s: %d train, %d eval rows", task.name, len(train), len(evaluation))
    return manifest


def load_prepared(data_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The prepared train and eval splits."""
    data_dir = Path(data_dir)
    return pd.read_parquet(data_dir / A.TRAIN_SPLIT), pd.read_parquet(data_dir / A.EVAL_SPLIT)
