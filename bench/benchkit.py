"""Helpers shared by bench_overhead.py, bench_demo.py and make_bench.py: snapshots, machine facts, job logs.

The parsing helpers are pure (tests/test_bench_parsing.py); the rest runs commands.
"""

from __future__ import annotations

import csv
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOG_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}) \w+ [\w.]+: (.*)$")
MODEL_LOAD = re.compile(r"loaded model (\S+) in ([\d.]+) s")
CAPTURE = re.compile(r"captured \S+ \(\d+ layers\) in ([\d.]+) s")
LINEAGE = re.compile(r"lineage: recorded \d+ output\(s\) of \w+ in ([\d.]+) s")


# ---- pure parsing ------------------------------------------------------------------------------------------


@dataclass
class JobLog:
    """What one job's log says: the span of its timestamped lines and the timed events inside it."""

    span_s: float = 0.0
    model_loads: list[float] = field(default_factory=list)
    captures: list[float] = field(default_factory=list)
    lineage: list[float] = field(default_factory=list)
    # first log line to the start of the first model load: the lazy imports of torch and the model's code
    # (and the reading of inputs) of a job that loads a model; 0 for a job that loads none
    before_first_load_s: float = 0.0


def parse_job_log(text: str) -> JobLog:
    """Timestamps of the `setup_logging` lines (first to last), the model-load, capture and lineage times, and the
    time from the first line to the start of the first model load (its line's stamp minus its duration)."""
    stamps, out = [], JobLog()
    for line in text.splitlines():
        match = LOG_LINE.match(line.strip("\r"))
        if not match:
            continue
        stamps.append(datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f"))
        message = match.group(2)
        for pattern, sink in ((MODEL_LOAD, None), (CAPTURE, out.captures), (LINEAGE, out.lineage)):
            found = pattern.search(message)
            if found and sink is None:
                if not out.model_loads:
                    start = (stamps[-1] - stamps[0]).total_seconds() - float(found.group(2))
                    out.before_first_load_s = max(start, 0.0)
                out.model_loads.append(float(found.group(2)))
            elif found:
                sink.append(float(found.group(1)))
    if stamps:
        out.span_s = (max(stamps) - min(stamps)).total_seconds()
    return out


def read_benchmark_tsv(text: str) -> dict[str, float]:
    """Snakemake's benchmark file: header line, one row per repeat; the first row's s and max_rss (MB)."""
    rows = list(csv.DictReader(text.splitlines(), delimiter="\t"))
    if not rows:
        return {}
    row = rows[0]
    return {key: float(row[key]) for key in ("s", "max_rss") if row.get(key) not in (None, "", "-", "NA")}


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Total length covered by (start, end) intervals, overlaps counted once."""
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


def md_table(header: list[str], rows: list[list[object]]) -> str:
    """A markdown table; floats with 2 decimals."""

    def cell(value: object) -> str:
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ---- jobs of a finished Snakemake run ----------------------------------------------------------------------


@dataclass
class Job:
    """One job of a run: rule, wildcards, wall time (benchmark file), end time (its mtime) and its log."""

    rule: str
    name: str
    wall_s: float
    max_rss_mb: float
    end: float
    log: JobLog


def collect_jobs(study: Path) -> list[Job]:
    """Every job with a benchmark file under study/benchmarks, matched with logs/<rule>/<same>.log."""
    jobs = []
    for tsv in sorted((study / "benchmarks").rglob("*.tsv")):
        rel = tsv.relative_to(study / "benchmarks")
        rule, name = rel.parts[0], rel.with_suffix("").as_posix().split("/", 1)[-1]
        bench = read_benchmark_tsv(tsv.read_text())
        log_path = study / "logs" / rel.with_suffix(".log")
        log = parse_job_log(log_path.read_text(errors="replace")) if log_path.exists() else JobLog()
        jobs.append(Job(rule, name, bench.get("s", 0.0), bench.get("max_rss", 0.0), tsv.stat().st_mtime, log))
    return jobs


def jobs_union_s(jobs: list[Job]) -> float:
    """Wall time during which at least one job ran (the benchmark file is written as the job ends)."""
    return union_seconds([(job.end - job.wall_s, job.end) for job in jobs])


# ---- machine and snapshot ----------------------------------------------------------------------------------


def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def machine() -> dict[str, str]:
    """CPU model, cores, RAM, torch version (from the venv's python)."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        ram_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        ram = f"{ram_kb / 2**20:.1f} GiB"
    except (OSError, StopIteration):
        ram = "unknown"
    torch_version = (
        subprocess.run(
            [sys.executable, "-c", "import torch; print(torch.__version__)"], capture_output=True, text=True
        ).stdout.strip()
        or "unknown"
    )
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "ram": ram,
        "torch": torch_version,
        "python": platform.python_version(),
    }


def snapshot(dest: Path, repo: Path = REPO) -> str:
    """A clone of the repository's HEAD at `dest`, its .venv a link to the repository's; returns the commit.

    The venv's tunetrace is an editable install of the live checkout; run with `snapshot_env(dest)` so the
    clone's own pkg/ wins (PYTHONPATH comes before the .pth entry).
    """
    if dest.exists():
        shutil.rmtree(dest)
    subprocess.run(["git", "clone", "-q", str(repo), str(dest)], check=True)
    (dest / ".venv").symlink_to(repo / ".venv")
    return subprocess.run(
        ["git", "-C", str(dest), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def snapshot_env(dest: Path) -> dict[str, str]:
    # TUNETRACE_CACHE: the snapshot's own (tiny decoders, model layouts, parsed code imports), empty at first
    # like a fresh machine's: a benchmark never reads what the user's ~/.cache/tunetrace holds. Python writes
    # the package's bytecode into the snapshot as it does into a user's checkout (a fresh clone's first jobs
    # compile it, later ones read it).
    env = dict(os.environ, PYTHONPATH=str(dest / "pkg"), TUNETRACE_CACHE=str(dest / ".tunetrace-cache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PATH"] = f"{dest / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def timed(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    """Run `cmd`, output to `log`; the wall time of the whole process. Raises on failure, naming the log."""
    start = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}); see {log}")
    return wall


def fresh_tree(study: Path) -> None:
    """An empty results tree: no results/, logs/ or benchmarks/ (the .snakemake cache stays)."""
    for name in ("results", "logs", "benchmarks"):
        shutil.rmtree(study / name, ignore_errors=True)
