"""Readers of task data: local files (CSV, TSV, JSONL, JSON array, Parquet, SQuAD JSON) or a hub split, each
error naming the file (and line) and the fix; and the prepared splits as the prepare_data job wrote them.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from tunetrace import artifacts as A
from tunetrace.data.checks import DataError

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}


def infer_format(path: str | os.PathLike, declared: str = "auto") -> str:
    """The file format: declared, or from the extension."""
    if declared != "auto":
        return declared
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise DataError(
            f"{path}: cannot tell the format from '{suffix}'; "
            "set source.format to one of csv, tsv, jsonl, json, parquet, squad"
        )
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
            io.StringIO(text),
            sep=sep,
            dtype=str,
            keep_default_na=False,
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


def _is_squad(document: Any) -> bool:
    """A SQuAD document: {"data": [{"paragraphs": [...]}, ...]}."""
    data = document.get("data") if isinstance(document, dict) else None
    return isinstance(data, list) and bool(data) and isinstance(data[0], dict) and "paragraphs" in data[0]


def _read_json(path: Path) -> pd.DataFrame:
    """A .json file: an array of objects (one per example), a SQuAD document, or JSON Lines under a .json name."""
    text = _decode(path)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":  # one object per line: JSON Lines saved as .json
            return _read_jsonl(path)
        raise DataError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from err
    if _is_squad(document):
        return _read_squad(path)
    if isinstance(document, dict) and len(text.strip().splitlines()) == 1:  # JSON Lines of one example
        return _read_jsonl(path)
    if not isinstance(document, list):
        raise DataError(
            f"{path}: a JSON {type(document).__name__}, not an array of examples; write the file as "
            "[{...}, {...}] (one object per example), as JSON Lines, or set source.format: squad for "
            "a SQuAD document"
        )
    for index, item in enumerate(document):
        if not isinstance(item, dict):
            raise DataError(
                f"{path}: item {index} of the JSON array is a {type(item).__name__}, not an object; "
                "every example must be an object of column: value"
            )
    return pd.DataFrame(document)


def load_squad_json(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Flatten a SQuAD JSON file to rows: id, title, context, question, answers (texts), answer_starts."""
    with open(path, encoding="utf-8") as handle:
        document = json.load(handle)
    rows = []
    for article in document["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = [] if qa.get("is_impossible") else qa.get("answers", [])
                rows.append(
                    {
                        "id": qa["id"],
                        "title": article.get("title", ""),
                        "context": paragraph["context"],
                        "question": qa["question"],
                        "answers": [a["text"] for a in answers],
                        "answer_starts": [int(a["answer_start"]) for a in answers],
                    }
                )
    return rows


def _read_squad(path: Path) -> pd.DataFrame:
    """A SQuAD v1/v2 JSON file as rows: id, title, context, question, answers ([{text, answer_start}] as JSON)."""
    rows = load_squad_json(path)
    for row in rows:
        starts = row.pop("answer_starts")
        row["answers"] = json.dumps(
            [{"text": t, "answer_start": s} for t, s in zip(row["answers"], starts, strict=True)]
        )
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
    elif fmt == "json":
        frame = _read_json(path)
    elif fmt == "parquet":
        frame = pd.read_parquet(path)
    elif fmt == "squad":
        frame = _read_squad(path)
    else:
        raise DataError(f"{path}: unsupported format '{fmt}'")
    if frame.empty:
        raise DataError(f"{path}: no examples (only a header, or blank lines)")
    return frame


def _fetch_fix(hub_id: str) -> str:
    return (
        f'download it once with network and the same HF_DATASETS_CACHE: python -c "import datasets; '
        f"datasets.load_dataset('{hub_id}')\", or point source.train/source.eval at local files "
        "(docs/tasks.md, 'Hub datasets')"
    )


def read_hub_split(hub_id: str, split: str, key: str) -> pd.DataFrame:
    """Load a split of a hub dataset with `datasets.load_dataset`: from the hub, or offline
    (HF_DATASETS_OFFLINE=1 / HF_HUB_OFFLINE=1) from the local datasets cache. `key` is the config key
    of the task's source (tasks.<name>.source) the errors name."""
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError as err:
        raise DataError(f"{key}.hub_id '{hub_id}' needs the `datasets` package: pip install datasets") from err
    offline = any(
        os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE") for v in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")
    )
    cache = os.environ.get("HF_DATASETS_CACHE") or str(datasets.config.HF_DATASETS_CACHE)
    try:
        dataset = datasets.load_dataset(hub_id, split=split, cache_dir=cache)
    except Exception as err:  # noqa: BLE001 - any hub or cache failure becomes one clear message
        if isinstance(err, ValueError) and "split" in str(err).lower():
            raise DataError(
                f"{key}: hub dataset '{hub_id}' has no split '{split}' ({err}); set "
                f"{key}.train / {key}.eval to one of its splits"
            ) from err
        if offline:
            raise DataError(
                f"{key}.hub_id '{hub_id}': not in the local datasets cache {cache} and the hub is off "
                f"(HF_DATASETS_OFFLINE / HF_HUB_OFFLINE set); {_fetch_fix(hub_id)} ({err})"
            ) from err
        raise DataError(
            f"{key}.hub_id '{hub_id}' split '{split}' could not be loaded ({err}); {_fetch_fix(hub_id)}"
        ) from err
    frame = dataset.to_pandas()
    # which build of the dataset was read (datasets' content fingerprint), for the data manifest
    frame.attrs["hub"] = {
        "id": hub_id,
        "split": split,
        "rows": len(frame),
        "fingerprint": getattr(dataset, "_fingerprint", None),
    }
    return frame


def load_prepared(data_dir: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The prepared train and eval splits."""
    data_dir = Path(data_dir)
    return pd.read_parquet(data_dir / A.TRAIN_SPLIT), pd.read_parquet(data_dir / A.EVAL_SPLIT)
