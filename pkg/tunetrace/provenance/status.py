"""`tunetrace status`: done / missing / stale / failed / modified per (method, task, seed), from the
workflow's view.

The workflow's own view is `snakemake --summary` (a dry run: one row per output with its status and
plan); lineage adds what Snakemake cannot see: an input re-written behind its back (ids disagree), and
an output whose bytes are no longer the ones its rule wrote (`modified`: edited by hand or damaged;
files whose size and mtime match their record are trusted here, the audit re-hashes everything).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tunetrace.provenance.integrity import Problem, verify_inputs
from tunetrace.provenance.lineage import read_record, recording_enabled

RUN_PATH = re.compile(r"^results/[a-z_]+/(?P<method>[A-Za-z][A-Za-z0-9_]*)/"
                      r"(?P<task>[A-Za-z][A-Za-z0-9_]*)/seed(?P<seed>\d+)")
ORDER = ("failed", "modified", "stale", "missing", "done")


def run_summary(snakemake_args: Iterable[str], workdir: str | os.PathLike = ".") -> str:
    """The TSV of `snakemake --summary` (a dry run; nothing is executed)."""
    cmd = [sys.executable, "-m", "snakemake", "--summary", "--cores", "1", *snakemake_args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake --summary failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


def parse_summary(text: str) -> list[dict[str, str]]:
    """Rows of the summary table as dicts (output_file, date, rule, log-file(s), status, plan)."""
    rows, header = [], None
    for line in text.splitlines():
        cells = line.split("\t")
        if cells[0] == "output_file":
            header = cells
        elif header and len(cells) == len(header):
            rows.append(dict(zip(header, cells, strict=True)))
    return rows


def lineage_consistent(path: str) -> bool:
    """False when an input's current lineage id differs from the one this output recorded."""
    record = read_record(path)
    if record is None:
        return True  # no record: Snakemake's view decides
    for entry in record["inputs"]:
        if entry.get("lineage_id"):
            current = read_record(entry["path"])
            if current is None or current["id"] != entry["lineage_id"]:
                return False
    return True


def tampered_outputs(rows: Iterable[Mapping[str, str]], workdir: str | os.PathLike = ".") -> dict[str, Problem]:
    """Output path -> problem, for every output on disk whose bytes differ from its lineage record."""
    if not recording_enabled():
        return {}
    present = [row["output_file"] for row in rows if row["status"] != "missing"]
    return {p.path: p for p in verify_inputs(present, workdir, trust_unchanged=True, require_record=False)}


def row_state(row: Mapping[str, str], workdir: Path, tampered: Mapping[str, Problem] | None = None) -> str:
    """One output's state: done, missing, failed (its job ran and left no output), modified, stale."""
    status, plan = row["status"], row["plan"]
    if status == "missing":
        logs = [p for p in row.get("log-file(s)", "").split(",") if p and p != "-"]
        return "failed" if any((workdir / p).exists() for p in logs) else "missing"
    if status == "incomplete":
        return "failed"
    if row["output_file"] in (tampered or {}):
        return "modified"
    if plan != "no update" or not lineage_consistent(str(workdir / row["output_file"])):
        return "stale"
    return "done"


def run_table(rows: Iterable[Mapping[str, str]], workdir: str | os.PathLike = ".",
              tampered: Mapping[str, Problem] | None = None) -> dict[tuple, dict[str, Any]]:
    """(method, task, seed) -> overall state and the state of each rule's outputs (`tampered`: from
    tampered_outputs, computed here when not given)."""
    rows = list(rows)
    tampered = tampered_outputs(rows, workdir) if tampered is None else tampered
    states: dict[tuple, dict[str, str]] = defaultdict(dict)
    for row in rows:
        match = RUN_PATH.match(row["output_file"])
        if not match:
            continue
        key = (match["method"], match["task"], int(match["seed"]))
        state = row_state(row, Path(workdir), tampered)
        old = states[key].get(row["rule"], "done")
        states[key][row["rule"]] = min(old, state, key=ORDER.index)
    return {key: {"state": min(rules.values(), key=ORDER.index), "rules": rules}
            for key, rules in sorted(states.items())}


def render_table(table: Mapping[tuple, Mapping[str, Any]]) -> str:
    """Plain text table, one line per run."""
    rules = sorted({r for entry in table.values() for r in entry["rules"]})
    header = ["method", "task", "seed", "state", *rules]
    lines = [header]
    for (method, task, seed), entry in table.items():
        lines.append([method, task, str(seed), entry["state"], *(entry["rules"].get(r, "-") for r in rules)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)
