"""How many examples a task's data file holds, cheaply enough for the DAG build (no pandas, no tokenizer).

The cluster requests size a training job's runtime by the tokens it trains on (tunetrace.cluster.requests), so
Snakemake needs the count of each local training file while it plans. Delimited files and JSON Lines count their
lines (a quoted field that spans lines counts more than once: an upper bound, which is what a time limit wants);
JSON arrays their items; SQuAD files their questions; Parquet files read the row count from the footer. A hub
split or a file that is not there counts as unknown (None). Counts are cached per file, size and mtime.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

_CACHE: dict[tuple[str, int, int], int | None] = {}
_LINE_FORMATS = {".csv": True, ".tsv": True, ".jsonl": False}  # suffix -> has a header line


def _count_lines(path: Path) -> int:
    lines, last = 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")  # a last line without its newline


def _count_json(path: Path) -> int | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError):
        return _count_lines(path)  # JSON Lines saved as .json; the reader says what is wrong with it
    if isinstance(document, list):
        return len(document)
    if isinstance(document, dict) and isinstance(document.get("data"), list):  # SQuAD: one example per question
        return sum(len(p.get("qas", [])) for article in document["data"] for p in article.get("paragraphs", []))
    return None


def _count(path: Path, fmt: str) -> int | None:
    kind = path.suffix.lower() if fmt == "auto" else "." + fmt
    if kind in _LINE_FORMATS:
        return max(0, _count_lines(path) - _LINE_FORMATS[kind])
    if kind in (".json", ".squad"):
        return _count_json(path)
    if kind == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    return None


def mean_bytes_per_example(path: str | os.PathLike | None, fmt: str = "auto") -> float | None:
    """Bytes per example of a local CSV, TSV or JSON Lines file (a proxy for its texts' length), else None."""
    kind = Path(path).suffix.lower() if path and fmt == "auto" else "." + fmt
    count = count_examples(path, fmt) if kind in _LINE_FORMATS else None
    return Path(path).stat().st_size / count if count else None


def count_examples(path: str | os.PathLike | None, fmt: str = "auto") -> int | None:
    """Examples in a local data file (`fmt` as the task's source.format), or None when they cannot be counted."""
    if not path or fmt == "hub":
        return None
    file = Path(path)
    try:
        stat = file.stat()
    except OSError:
        return None
    key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _CACHE:
        _CACHE[key] = _count(file, fmt)
    return _CACHE[key]
