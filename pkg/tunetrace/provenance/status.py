"""`tunetrace status`: done / missing / stale / failed / modified per (method, task, seed), from the
workflow's view, with each run's red-flag verdict (its validation report) and the comparison's state.

The workflow's own view is `snakemake --summary` (a dry run: one row per output with its status and
plan); lineage adds what Snakemake cannot see: an input re-written behind its back (ids disagree), and
an output whose bytes are no longer the ones its rule wrote (`modified`: edited by hand or damaged;
files whose size and mtime match their record are trusted here, the audit re-hashes everything).
"""

from __future__ import annotations

import json
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

RUN_PATH = re.compile(
    r"^results/[a-z_]+/(?P<method>[A-Za-z][A-Za-z0-9_]*)/"
    r"(?P<task>[A-Za-z][A-Za-z0-9_]*)/seed(?P<seed>\d+)"
)
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


def run_table(
    rows: Iterable[Mapping[str, str]], workdir: str | os.PathLike = ".", tampered: Mapping[str, Problem] | None = None
) -> dict[tuple, dict[str, Any]]:
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
    return {
        key: {"state": min(rules.values(), key=ORDER.index), "rules": rules} for key, rules in sorted(states.items())
    }


def render_table(table: Mapping[tuple, Mapping[str, Any]]) -> str:
    """Plain text table, one line per run; the red-flag verdict last when the entries carry one (add_verdicts)."""
    rules = sorted({r for entry in table.values() for r in entry["rules"]})
    judged = any("verdict" in entry for entry in table.values())
    header = ["method", "task", "seed", "state", *rules, *(["verdict"] if judged else [])]
    lines = [header]
    for (method, task, seed), entry in table.items():
        lines.append(
            [
                method,
                task,
                str(seed),
                entry["state"],
                *(entry["rules"].get(r, "-") for r in rules),
                *([verdict_cell(entry.get("verdict"))] if judged else []),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)


# ---------------------------------------------------------------- verdicts

VALIDATION_REPORT = "results/validation/{method}/{task}/seed{seed}.json"
COMPARISON = Path("results") / "comparison.json"
COMPARE_LOG = Path("logs") / "compare_runs" / "compare_runs.log"
STRICT_MESSAGE = "validation.strict is true"  # the start of guard.validation.enforce_strict's message


def run_verdict(method: str, task: str, seed: int, workdir: str | os.PathLike = ".") -> dict[str, Any] | None:
    """A run's red-flag verdict from its validation report (None when it has none yet): passed, the counts,
    and every critical flag (code, message)."""
    name = VALIDATION_REPORT.format(method=method, task=task, seed=seed)
    if not (Path(workdir) / name).is_file():
        return None
    report = json.loads((Path(workdir) / name).read_text(encoding="utf-8"))
    critical = [{"code": f["code"], "message": f["message"]} for f in report["flags"] if f["severity"] == "critical"]
    return {
        "passed": report["passed"],
        "critical": report["critical"],
        "warning": report["warning"],
        "critical_flags": critical,
        "report": name,
    }


def add_verdicts(table: Mapping[tuple, dict[str, Any]], workdir: str | os.PathLike = ".") -> None:
    """Each run's entry gets its `verdict` (run_verdict; None before validate_run wrote its report)."""
    for (method, task, seed), entry in table.items():
        entry["verdict"] = run_verdict(method, task, seed, workdir)


def verdict_cell(verdict: Mapping[str, Any] | None) -> str:
    """One table cell: pass, pass(1w), FAIL(2c,1w), or - (not validated yet)."""
    if verdict is None:
        return "-"
    counts = ",".join(f"{verdict[k]}{k[0]}" for k in ("critical", "warning") if verdict[k])
    return ("pass" if verdict["passed"] else "FAIL") + (f"({counts})" if counts else "")


def comparison_state(
    verdicts: Mapping[tuple, Mapping[str, Any] | None], strict: bool | None, workdir: str | os.PathLike = "."
) -> dict[str, Any]:
    """Whether results/comparison.json is written, or withheld by validation.strict (its job's log says so, or
    `strict` and critical flags standing say it will be), with the runs and codes; or not made yet.
    `strict` None: the study's config could not be read here."""
    if (Path(workdir) / COMPARISON).is_file():
        return {"state": "written", "reason": None}
    failing = [
        f"{m}/{t}/seed{s}: " + ", ".join(f["code"] for f in v["critical_flags"])
        for (m, t, s), v in verdicts.items()
        if v and v["critical"]
    ]
    log = Path(workdir) / COMPARE_LOG
    stopped = log.is_file() and STRICT_MESSAGE in log.read_text(encoding="utf-8", errors="replace")
    if failing and (stopped or strict):
        return {
            "state": "withheld",
            "reason": "validation.strict is true and critical red flags stand ("
            + "; ".join(failing)
            + "); fix those runs or set validation.strict: false",
        }
    return {"state": "not written", "reason": "the workflow has not made it yet"}


def render_verdicts(table: Mapping[tuple, Mapping[str, Any]], comparison: Mapping[str, Any]) -> list[str]:
    """Below the table: the comparison's state, then each critical flag that stands, with its run and report."""
    lines = [
        f"comparison: {COMPARISON} {comparison['state']}"
        + (f" - {comparison['reason']}" if comparison["reason"] else "")
    ]
    for (method, task, seed), entry in table.items():
        verdict = entry.get("verdict")
        for item in (verdict or {}).get("critical_flags", []):
            lines.append(f"CRITICAL {method}/{task}/seed{seed} {item['code']}: {item['message']} [{verdict['report']}]")
    return lines
