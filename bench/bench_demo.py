"""Where the demo's time goes: the whole embedded demo from an empty results tree, in a snapshot of HEAD.

Wall time and peak RSS of `snakemake results/comparison.json --cores 2`; per rule the jobs' wall time (sum and
count, from the `benchmark:` files), the share of job time spent starting Python and importing (a job's wall
minus the span of its log lines) against the logged work, Snakemake's own time, and the model loads per rule.

    python bench/bench_demo.py [--section out.md]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

from benchkit import Job, collect_jobs, jobs_union_s, loadavg, md_table, snapshot, snapshot_env, timed

GOAL_S = 180.0


def run_demo(study: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB, the largest process of the tree, from GNU time) of the demo."""
    peak = study / "peak_kb.txt"
    wall = timed(
        [
            "/usr/bin/time",
            "-f",
            "%M",
            "-o",
            str(peak),
            str(study / ".venv/bin/snakemake"),
            "results/comparison.json",
            "--cores",
            "2",
        ],
        study,
        snapshot_env(study),
        study / "snakemake.log",
    )
    return wall, int(peak.read_text().split()[-1]) / 1024


def rule_rows(jobs: list[Job]) -> list[list[object]]:
    """Per rule: jobs, wall sum, start-up sum, logged-work sum, of it before the first model load, loads, load time,
    max RSS; the longest first."""
    by_rule: dict[str, list[Job]] = defaultdict(list)
    for job in sorted(jobs, key=lambda job: job.end):
        by_rule[job.rule].append(job)
    rows = []
    for rule, group in by_rule.items():
        wall = sum(j.wall_s for j in group)
        startup = sum(max(j.wall_s - j.log.span_s, 0) for j in group)
        loads = sum(len(j.log.model_loads) for j in group)
        rows.append(
            [
                rule,
                len(group),
                wall,
                startup,
                wall - startup,
                sum(j.log.before_first_load_s for j in group),
                loads,
                sum(sum(j.log.model_loads) for j in group),
                max(j.max_rss_mb for j in group),
            ]
        )
    return sorted(rows, key=lambda row: -row[2])


def render(commit: str, wall: float, peak_mb: float, jobs: list[Job], load_before: str, accuracy: str) -> str:
    rows = rule_rows(jobs)
    job_wall = sum(row[2] for row in rows)
    startup = sum(row[3] for row in rows)
    busy = jobs_union_s(jobs)
    before_load = sum(row[5] for row in rows)
    loads = sum(row[6] for row in rows)
    total = [
        "**all**",
        len(jobs),
        job_wall,
        startup,
        job_wall - startup,
        before_load,
        loads,
        sum(row[7] for row in rows),
        max(row[8] for row in rows),
    ]
    lines = [
        "### The demo from an empty results tree: where the time goes",
        "",
        "Command: `python bench/bench_demo.py`",
        "",
        f"Snapshot of commit {commit}; load average before {load_before}, after {loadavg()}.",
        "",
        md_table(
            ["measure", "value"],
            [
                ["wall time (goal < 180 s)", f"{wall:.0f} s ({'meets' if wall < GOAL_S else '**misses**'} the goal)"],
                ["peak RSS (largest process)", f"{peak_mb:.0f} MB"],
                ["jobs", len(jobs)],
                ["Snakemake's own time (wall - time any job ran)", f"{wall - busy:.1f} s"],
                ["job time, summed (2 jobs may overlap)", f"{job_wall:.1f} s"],
                ["of which start-up, imports and exit", f"{startup:.1f} s ({100 * startup / job_wall:.0f} %)"],
                ["of which logged work (compute, I/O)", f"{job_wall - startup:.1f} s"],
                [
                    "of the logged work, before a job's first model load (torch and model-code imports, input reading)",
                    f"{before_load:.1f} s ({100 * before_load / job_wall:.0f} %)",
                ],
                ["model loads", f"{loads} ({sum(row[7] for row in rows):.1f} s)"],
                ["accuracy", accuracy],
            ],
        ),
        "",
        md_table(
            [
                "rule",
                "jobs",
                "wall sum (s)",
                "start-up + imports + exit (s)",
                "logged work (s)",
                "of which before the first model load (s)",
                "model loads",
                "load time (s)",
                "max RSS (MB)",
            ],
            rows + [total],
        ),
        "",
        "- Job wall time and max RSS from the rules' `benchmark:` files; start-up + imports + exit is each job's "
        "wall minus the span of its timestamped log lines (the first line comes after the script's imports), "
        "so it also holds Snakemake's script preamble; model loads from the `loaded model ... in X s` lines. "
        "A job that loads a model imports torch and the model's transformers code lazily, after its first log "
        "line: the time from that line to the start of its first load (the load line's stamp minus its "
        "duration) holds those imports and the reading of its inputs.",
        "",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="accepted for make_bench (the demo is one run)")
    parser.add_argument("--section", type=Path, help="write the markdown section here (else print it)")
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="run in DIR (a new snapshot) and keep it: a finished demo for bench_planning --finished",
    )
    args = parser.parse_args()
    load_before = loadavg()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-demo-"))
    study = root if args.keep else root / "repo"
    commit = snapshot(study)
    wall, peak_mb = run_demo(study)
    doc = json.loads((study / "results/comparison.json").read_text())
    task = next(iter(doc["tasks"].values()))
    accuracy = "; ".join(f"{name} {m['primary']['mean']:.3f}" for name, m in task["methods"].items())
    text = render(commit, wall, peak_mb, collect_jobs(study), load_before, accuracy)
    if args.section:
        args.section.write_text(text)
    else:
        print(text)
    if not args.keep:
        subprocess.run(["rm", "-rf", str(root)], check=True)


if __name__ == "__main__":
    main()
