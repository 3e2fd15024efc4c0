"""No-op rerun of the finished demo at two commits, side by side: `snakemake -n results/comparison.json` timed
in interleaved rounds, and which heavy libraries (torch, transformers, peft) building the DAG imported.

    python bench/bench_noop_revisions.py --before c5b0336 --after HEAD --rounds 7 --work bench-out/noop

Each commit is cloned under --work (its .venv a link to this checkout's) and its demo is run to the end
once (a few minutes each; kept, so a second call only times). c5b0336 is the last commit before the
restructure into subpackages with derived code hashes, whose DAG build imported torch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchkit import REPO, loadavg, md_table

PROBE = """import sys, atexit
atexit.register(lambda: print("HEAVY=" + ",".join(m for m in ("torch", "transformers", "peft") if m in sys.modules),
                              file=sys.stderr))
from snakemake.cli import main
sys.argv = ["snakemake", "-n", "results/comparison.json"]
main()
"""


def finished_demo(work: Path, rev: str) -> tuple[Path, dict[str, str]]:
    """A clone of `rev` whose demo has run to the end, and the environment that runs its own pkg/."""
    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    dest = work / sha
    env = dict(os.environ, PYTHONPATH=str(dest / "pkg"))  # before the venv's editable .pth entry
    env.pop("SNAKEMAKE_PROFILE", None)
    if not dest.exists():
        subprocess.run(["git", "clone", "-q", str(REPO), str(dest)], check=True)
        subprocess.run(["git", "-C", str(dest), "checkout", "-q", sha], check=True)
        (dest / ".venv").symlink_to(REPO / ".venv")
    if not (dest / "results" / "comparison.json").exists():
        print(f"running the demo at {sha} (a few minutes)", file=sys.stderr)
        subprocess.run(
            [str(dest / ".venv/bin/snakemake"), "results/comparison.json"],
            cwd=dest,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return dest, env


def noop_seconds(dest: Path, env: dict[str, str]) -> float:
    """One timed `snakemake -n`; it must find nothing to do (else the tree is not finished for this commit)."""
    start = time.perf_counter()
    done = subprocess.run(
        [str(dest / ".venv/bin/snakemake"), "-n", "results/comparison.json"],
        cwd=dest,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if done.returncode or "Nothing to be done" not in done.stdout + done.stderr:
        raise SystemExit(f"{dest}: the no-op run planned jobs or failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", default="c5b0336")
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--work",
        type=Path,
        default=REPO / "bench-out" / "noop",
        help="where the clones and their finished demos go (ignored by git)",
    )
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    studies = {rev: finished_demo(args.work, rev) for rev in (args.before, args.after)}
    load_before = loadavg()
    times: dict[str, list[float]] = {rev: [] for rev in studies}
    for round_ in range(args.rounds):  # alternate which commit goes first
        for rev in list(studies) if round_ % 2 == 0 else list(studies)[::-1]:
            times[rev].append(noop_seconds(*studies[rev]))
    rows = []
    for rev, (dest, env) in studies.items():
        probe = subprocess.run(
            [str(dest / ".venv/bin/python"), "-c", PROBE], cwd=dest, env=env, capture_output=True, text=True
        )
        heavy = next((line.split("=", 1)[1] for line in probe.stderr.splitlines() if line.startswith("HEAVY=")), "?")
        rows.append(
            [
                f"{rev} ({dest.name})",
                f"{statistics.median(times[rev]):.2f}",
                ", ".join(f"{t:.2f}" for t in times[rev]),
                heavy or "none",
            ]
        )
    print(md_table(["commit", "no-op `snakemake -n`, median (s)", "rounds (s)", "heavy libraries imported"], rows))
    print(f"\n{args.rounds} interleaved rounds; load average (1/5/15 min) before {load_before}, after {loadavg()}.")


if __name__ == "__main__":
    main()
