"""Lineage overhead: the same study run with and without lineage recording, side by side.

Usage (from the repository root):
    PYTHONPATH=pkg python bench/bench_lineage.py --study demo   # embedded default config
    PYTHONPATH=pkg python bench/bench_lineage.py --study tiny --repeats 2   # tests' tiny config

Two measurements:
1. A/B wall time: `snakemake results/comparison.json` with TUNETRACE_LINEAGE=1 and =0, each in a fresh
   directory, one after the other (noisy on a shared machine: the difference is within run-to-run jitter).
2. In-job accounting (precise): every job logs the seconds spent in `record_lineage` (hashing outputs,
   reading input records, git and package versions, writing sidecars); their sum over the wall time of
   the lineage run is the overhead ratio.
3. Job wall time per rule (Snakemake's `benchmark:` files), with and without: shows which rule's jobs
   a wall-time difference comes from.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINE = re.compile(r"lineage: recorded (\d+) output\(s\) of (\w+) in ([0-9.]+) s")


def prepare(root: Path, study: str) -> list[str]:
    """Data and config for the study in `root`; returns extra snakemake arguments."""
    if study == "demo":
        shutil.copytree(REPO / "data" / "demo", root / "data" / "demo")
        (root / "config").mkdir()
        shutil.copy2(REPO / "config" / "config.yaml", root / "config" / "config.yaml")
        return []
    sys.path.insert(0, str(REPO / "tests"))
    import yaml

    from conftest import tiny_config, write_sentiment_csv

    write_sentiment_csv(root / "data" / "train.csv", 48, seed=1)
    write_sentiment_csv(root / "data" / "eval.csv", 24, seed=2)
    (root / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    return ["--configfile", str(root / "config.yaml")]


def run_once(root: Path, extra: list[str], lineage: bool, cores: int) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO / "pkg"),
        "WANDB_MODE": "disabled",
        "TUNETRACE_LINEAGE": "1" if lineage else "0",
    }
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "results/comparison.json",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(root),
        "--cores",
        str(cores),
        "--workflow-profile",
        "none",
        "--quiet",
        *extra,
    ]
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake failed in {root}:\n{proc.stderr[-4000:]}")
    return time.perf_counter() - started


def lineage_seconds(root: Path) -> dict[str, float]:
    """Seconds spent recording lineage, per rule, from the job logs."""
    per_rule: dict[str, float] = {}
    for log in (root / "logs").rglob("*.log"):
        for match in LINE.finditer(log.read_text(errors="replace")):
            per_rule[match[2]] = per_rule.get(match[2], 0.0) + float(match[3])
    return per_rule


def job_seconds(root: Path) -> dict[str, float]:
    """Wall seconds of every job, summed per rule, from Snakemake's `benchmark:` files (rules without
    one are not counted)."""
    import csv

    per_rule: dict[str, float] = {}
    for tsv in (root / "benchmarks").rglob("*.tsv"):
        rule = tsv.relative_to(root / "benchmarks").parts[0]
        with open(tsv, encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                per_rule[rule] = per_rule.get(rule, 0.0) + float(row["s"])
    return per_rule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", choices=["demo", "tiny"], default="tiny")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1, help="pairs of runs, in ABBA order against drift")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench_lineage_"))
    order = [m for i in range(args.repeats) for m in (("with", "without") if i % 2 == 0 else ("without", "with"))]
    walls: dict[str, list[float]] = {"with": [], "without": []}
    per_rule: dict[str, float] = {}
    jobs: dict[str, dict[str, float]] = {"with": {}, "without": {}}
    for i, mode in enumerate(order):
        root = base / f"{i}_{mode}"
        root.mkdir()
        extra = prepare(root, args.study)
        walls[mode].append(run_once(root, extra, lineage=(mode == "with"), cores=args.cores))
        for rule, seconds in job_seconds(root).items():
            jobs[mode][rule] = jobs[mode].get(rule, 0.0) + seconds / args.repeats
        if mode == "with":
            for rule, seconds in lineage_seconds(root).items():
                per_rule[rule] = per_rule.get(rule, 0.0) + seconds
            sidecars = len(list(root.rglob("*.lineage.json")))
        shutil.rmtree(root, ignore_errors=True)
    with_s, without_s = sum(walls["with"]), sum(walls["without"])
    spent = sum(per_rule.values())
    result = {
        "study": args.study,
        "order": order,
        "wall_with_s": [round(w, 1) for w in walls["with"]],
        "wall_without_s": [round(w, 1) for w in walls["without"]],
        "ab_ratio": round(with_s / without_s, 3),
        "lineage_s_total": round(spent, 2),
        "lineage_share_of_wall": round(spent / with_s, 4),
        "lineage_s_per_rule": {k: round(v / args.repeats, 2) for k, v in sorted(per_rule.items())},
        "sidecars_per_run": sidecars,
        # job wall time summed per rule (mean per run): where a with/without difference sits
        "job_s_per_rule": {
            rule: {"with": round(jobs["with"].get(rule, 0.0), 1), "without": round(jobs["without"].get(rule, 0.0), 1)}
            for rule in sorted(set(jobs["with"]) | set(jobs["without"]))
        },
        "job_s_total": {mode: round(sum(jobs[mode].values()), 1) for mode in jobs},
    }
    print(json.dumps(result, indent=2))
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
