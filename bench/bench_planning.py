"""How Snakemake's own cost grows with the study: planning time and no-op reruns.

Planning: `snakemake -n results/comparison.json --configfile CFG` on an empty results tree, for
generated studies of about 100, 500 and 2,000 jobs (tasks x methods x seeds; every task reads the
demo data, the model is the embedded MiniLM). Wall time of the whole command, median of --repeats;
the job count is the "total" of snakemake's job stats.

No-op: a study that is really finished (every output made by its own job, with this code), then
`snakemake -n TARGET` and `snakemake TARGET`, each median of --repeats, checked to have nothing to
do. Training 2,000 runs is not affordable on a CPU, and faking outputs (`--touch`, copied files)
would skip the params and checksum metadata a real no-op checks, so only the demo is measured:
pass `--finished DIR`, a checkout whose demo already ran (what `make bench`'s demo benchmark
leaves), or, without --quick, the script runs the demo in a scratch copy first (minutes).

Start-up: `snakemake --version` (Python, Snakemake and its plugins, no workflow), and with
`--dead-slurm-conf PATH` the same with SLURM_CONF=PATH, a slurm.conf whose controller is down: the
Slurm executor plugin runs `scontrol show config` (10 s timeout) when snakemake loads it.

    .venv/bin/python bench/bench_planning.py [--quick] [--section PATH] [--finished DIR]
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")
TARGET = "results/comparison.json"
# `snakemake --touch` sleeps 0.1 s in every job (Snakemake's touch executor, so the touched outputs' mtimes follow
# the DAG): 196 s of sleep for the 1961-job study, most of this benchmark. 5 ms still puts every job in a later
# mtime tick; the no-op check after it (no job planned) fails the benchmark should the mtimes ever collide.
FAST_TOUCH = [
    str(Path(sys.executable).parent / "python"),
    "-c",
    "import snakemake.executors.touch as touch; touch.Executor.SLEEPING_TIME = 0.005; "
    "from snakemake.cli import main; main()",
]
FIGURE = Path("bench") / "figures" / "planning_scale.png"
# (tasks, methods, seeds): the demo's shape (30 jobs), then about 100, 500 and 2,000 jobs
SIZES = [(1, 2, 2), (2, 2, 4), (4, 4, 5), (8, 4, 10)]
METHOD_TEMPLATES = ["full", "lora_r8"]  # alternated, so half the methods are LoRA (merge + verify jobs)


def scratch_checkout(dest: Path) -> Path:
    """A copy of this checkout's tracked and untracked, not ignored files (no results/, no .snakemake/)."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        source = REPO / name
        if source.is_file() and not name.startswith(("results/", "benchmarks/", "logs/")):
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def study_config(tasks: int, methods: int, seeds: int) -> dict:
    """The embedded demo config grown to tasks x methods x seeds (copies of its task and methods)."""
    base = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    task = base["tasks"]["demo_sentiment"]
    config = copy.deepcopy(base)
    config["tasks"] = {f"task{i:02d}": copy.deepcopy(task) for i in range(tasks)}
    config["methods"] = {}
    for i in range(methods):
        template = METHOD_TEMPLATES[i % len(METHOD_TEMPLATES)]
        method = copy.deepcopy(base["methods"][template])
        method["learning_rate"] = float(method["learning_rate"]) * (1 + i // len(METHOD_TEMPLATES))
        config["methods"][f"{template}_{i:02d}"] = method
    config["seeds"] = list(range(seeds))
    return config


def timed(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed, done.stdout + done.stderr


def median_time(
    args: list[str], cwd: Path, repeats: int, env: dict[str, str] | None = None
) -> tuple[float, list[float], str]:
    times, output = [], ""
    for _ in range(repeats):
        seconds, output = timed(args, cwd, env)
        times.append(seconds)
    return statistics.median(times), times, output


def job_total(output: str) -> int:
    match = re.search(r"^total\s+(\d+)\s*$", output, re.MULTILINE)
    return int(match.group(1)) if match else 0


def finish_by_touch(checkout: Path, config_name: str) -> None:
    """Every planned output as a placeholder, then `snakemake --touch` records it (as tests/test_rerun.py does)."""
    summary = timed([SNAKEMAKE, "--summary", TARGET, "--configfile", config_name], checkout)[1]
    for line in summary.splitlines():
        name = line.split("\t")[0]
        if not name.startswith("results/"):
            continue
        path = checkout / name
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("placeholder\n")
        else:
            path.mkdir(parents=True, exist_ok=True)
    timed([*FAST_TOUCH, "--touch", "--forceall", TARGET, "--configfile", config_name], checkout)


def measure_size(checkout: Path, size: tuple[int, int, int], repeats: int, touched: bool) -> dict:
    tasks, methods, seeds = size
    config_name = f"planning_{tasks}x{methods}x{seeds}.yaml"
    (checkout / config_name).write_text(yaml.safe_dump(study_config(*size), sort_keys=False))
    for tree in ("results", ".snakemake"):
        shutil.rmtree(checkout / tree, ignore_errors=True)
    command = [SNAKEMAKE, "-n", TARGET, "--configfile", config_name]
    median, times, output = median_time(command, checkout, repeats)
    row = {
        "tasks": tasks,
        "methods": methods,
        "seeds": seeds,
        "runs": tasks * methods * seeds,
        "jobs": job_total(output),
        "median": median,
        "times": times,
    }
    if touched:
        finish_by_touch(checkout, config_name)
        row["noop"], row["noop_times"], noop_out = median_time(command, checkout, repeats)
        if job_total(noop_out):
            raise RuntimeError(f"{config_name}: the touched study still plans jobs:\n{noop_out[-2000:]}")
    print(f"{config_name}: {row}", file=sys.stderr)
    return row


def measure_planning(checkout: Path, repeats: int, touched: bool) -> list[dict]:
    # one untimed run first: a fresh copy has no __pycache__, and its first run compiles the package
    (checkout / "planning_warmup.yaml").write_text(yaml.safe_dump(study_config(*SIZES[0]), sort_keys=False))
    timed([SNAKEMAKE, "-n", TARGET, "--configfile", "planning_warmup.yaml"], checkout)
    return [measure_size(checkout, size, repeats, touched) for size in SIZES]


def run_demo(checkout: Path) -> float:
    print("running the demo for real in the scratch copy (minutes)...", file=sys.stderr)
    seconds, _ = timed([SNAKEMAKE, TARGET], checkout)
    return seconds


def measure_noop(finished: Path, repeats: int) -> dict:
    dry, dry_times, dry_out = median_time([SNAKEMAKE, "-n", TARGET], finished, repeats)
    real, real_times, real_out = median_time([SNAKEMAKE, TARGET], finished, repeats)
    for label, output in (("-n", dry_out), ("run", real_out)):
        if job_total(output) or "Nothing to be done" not in output:
            raise RuntimeError(
                f"the demo in {finished} is not finished (snakemake {label} has jobs to run):\n{output[-2000:]}"
            )
    return {"dry": dry, "dry_times": dry_times, "real": real, "real_times": real_times}


def dead_slurm_conf(value: str | None, tmp: Path) -> str | None:
    """The slurm.conf of a controller that is down: `value`, or with "auto" a minimal one (port 9: discard)."""
    if value != "auto":
        return value
    if not shutil.which("scontrol"):
        print("no scontrol on PATH: the Slurm start-up row is left out", file=sys.stderr)
        return None
    path = tmp / "dead-slurm.conf"
    path.write_text("ClusterName=bench\nSlurmctldHost=localhost\nSlurmctldPort=9\n")
    return str(path)


def measure_startup(checkout: Path, repeats: int, dead_slurm_conf: str | None) -> dict:
    plain, plain_times, _ = median_time([SNAKEMAKE, "--version"], checkout, repeats)
    result = {"plain": plain, "plain_times": plain_times}
    if dead_slurm_conf:
        env = {**os.environ, "SLURM_CONF": dead_slurm_conf}
        dead, dead_times, _ = median_time([SNAKEMAKE, "--version"], checkout, repeats, env)
        result.update(dead=dead, dead_times=dead_times)
    return result


def plot(rows: list[dict], noop: dict | None, demo_jobs: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    jobs = [r["jobs"] for r in rows]
    ax.plot(jobs, [r["median"] for r in rows], "o-", label="planning (snakemake -n, empty results/)")
    for r in rows:
        ax.plot([r["jobs"]] * len(r["times"]), r["times"], ".", color="grey", alpha=0.6)
    touched = [r for r in rows if "noop" in r]
    if touched:
        ax.plot(
            [r["jobs"] for r in touched],
            [r["noop"] for r in touched],
            "o--",
            label="no-op snakemake -n, study finished by --touch",
        )
    if noop:
        ax.plot([demo_jobs], [noop["dry"]], "s", label="no-op snakemake -n, finished demo")
        ax.plot([demo_jobs], [noop["real"]], "^", label="no-op snakemake, finished demo")
    ax.plot([500], [5], "r*", markersize=12, label="goal: 500 jobs < 5 s")
    ax.set_xlabel("jobs in the study")
    ax.set_ylabel("wall time (s)")
    ax.set_title("Snakemake cost against study size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def fit(rows: list[dict], key: str) -> tuple[float, float]:
    """Least-squares fixed cost (s) and cost per job (ms) of the median times under `key`."""
    import numpy as np

    slope, intercept = np.polyfit([r["jobs"] for r in rows], [r[key] for r in rows], 1)
    return float(intercept), float(slope * 1000)


SLURM_NOTE = (
    "The Slurm executor plugin (snakemake-executor-plugin-slurm) is imported by every `snakemake` command, local "
    "ones included, and at import runs `scontrol show config` (10 s timeout) to pick its status command. With "
    "the Slurm client installed and a slurm.conf whose controller is down, scontrol retries the connection for "
    "about 9 s before it fails, and every command waits for it. On this machine that slurm.conf was slurmd's "
    "configless cache (`/run/slurm/conf`, a link into the test cluster's spool) left behind after "
    "`tests/slurm/stop_cluster.sh` stopped the daemons; the row above reproduces it with `SLURM_CONF`."
)


def section(command: str, rows: list[dict], noop: dict | None, demo_jobs: int, startup: dict) -> str:
    times = lambda values: ", ".join(f"{v:.2f}" for v in values)  # noqa: E731
    lines = [
        "### How Snakemake's cost grows with the study",
        "",
        f"Command: `{command}`",
        "",
        "Planning: `snakemake -n results/comparison.json --configfile CFG` on an empty results tree. No-op "
        "(touched): the same command once every output exists as a placeholder recorded by "
        "`snakemake --touch --forceall` (real metadata: params with code hashes, input sets and checksums; "
        "placeholder bytes), as tests/test_rerun.py finishes its studies.",
        "",
        "| study (tasks x methods x seeds) | training runs | jobs | planning, median (s) | runs (s) | "
        "no-op on the touched study, median (s) | runs (s) | goal |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        goal = "plan 500 jobs < 5 s: " + ("met" if r["median"] < 5 else "**missed**") if 300 <= r["jobs"] <= 700 else ""
        touched = (f"{r['noop']:.2f} | {times(r['noop_times'])}") if "noop" in r else "- | -"
        lines.append(
            f"| {r['tasks']} x {r['methods']} x {r['seeds']} | {r['runs']} | {r['jobs']} | "
            f"{r['median']:.2f} | {times(r['times'])} | {touched} | {goal} |"
        )
    fixed, per_job = fit(rows, "median")
    lines += ["", f"Planning fits {fixed:.2f} s + {per_job:.2f} ms per job (least squares over the rows above)"]
    if all("noop" in r for r in rows):
        fixed, per_job = fit(rows, "noop")
        lines[-1] += f"; the touched no-op {fixed:.2f} s + {per_job:.2f} ms per job"
    lines[-1] += "."
    lines.append("")
    lines += [
        "No-op on the really finished demo (every output made by its own job with this code):",
        "",
        "| no-op rerun of the finished demo | jobs | median (s) | runs (s) | goal |",
        "|---|---|---|---|---|",
    ]
    if noop:
        for key, label in (("dry", f"`snakemake -n {TARGET}`"), ("real", f"`snakemake {TARGET}`")):
            verdict = "met" if noop[key] < 3 else "**missed**"
            lines.append(
                f"| {label} | {demo_jobs} | {noop[key]:.2f} | {times(noop[key + '_times'])} | < 3 s: {verdict} |"
            )
    else:
        lines.append("| not measured (--quick without --finished DIR) | | | | < 3 s |")
    lines += [
        "",
        "| start-up | median (s) | runs (s) |",
        "|---|---|---|",
        f"| `snakemake --version` | {startup['plain']:.2f} | {times(startup['plain_times'])} |",
    ]
    if "dead" in startup:
        lines.append(
            f"| `snakemake --version`, SLURM_CONF names a controller that is down | {startup['dead']:.2f} | "
            f"{times(startup['dead_times'])} |"
        )
    if "dead" in startup:
        lines += ["", SLURM_NOTE]
    lines += ["", f"![planning time against study size]({FIGURE.as_posix()})", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 planning run per size, no demo run of its own")
    parser.add_argument("--repeats", type=int, default=None, help="runs per measurement (default 3; 1 with --quick)")
    parser.add_argument("--finished", type=Path, help="a checkout whose demo (results/comparison.json) is finished")
    parser.add_argument(
        "--dead-slurm-conf",
        nargs="?",
        const="auto",
        help="a slurm.conf whose controller is down, for a start-up row (no value: a minimal one "
        "naming localhost:9; needs scontrol on PATH)",
    )
    parser.add_argument("--no-touched", action="store_true", help="skip the no-op runs on touched placeholder studies")
    parser.add_argument("--section", type=Path, help="write the markdown section here too")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)

    with tempfile.TemporaryDirectory(prefix="bench_planning_") as tmp:
        checkout = scratch_checkout(Path(tmp))
        startup = measure_startup(checkout, repeats, dead_slurm_conf(args.dead_slurm_conf, Path(tmp)))
        rows = measure_planning(checkout, repeats, not args.no_touched)
        finished = args.finished
        if finished is None and not args.quick:
            shutil.rmtree(checkout / "results", ignore_errors=True)
            shutil.rmtree(checkout / ".snakemake", ignore_errors=True)
            run_demo(checkout)
            finished = checkout
        noop = measure_noop(finished, repeats) if finished else None
        print(f"start-up: {startup}\nno-op of the finished demo: {noop}", file=sys.stderr)
        demo_jobs = job_total(timed([SNAKEMAKE, "-n", TARGET, "--forceall"], checkout)[1])
    plot(rows, noop, demo_jobs, REPO / FIGURE)
    argv = " ".join(sys.argv[1:])
    text = section(f".venv/bin/python bench/bench_planning.py {argv}".strip(), rows, noop, demo_jobs, startup)
    print(text)
    if args.section:
        args.section.write_text(text)


if __name__ == "__main__":
    main()
