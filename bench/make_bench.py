"""`make bench`: run the quick benchmarks and rewrite BENCHMARKS.md at the repository root, by topic.

Each benchmark script writes one markdown section (`--section PATH`: a `### ` title, `Command: ...`, tables);
this script runs them one after the other, records the load average before and after each and its wall time,
and places each section under its topic beside the earlier measurements of bench/RESULTS.md on that topic.
A script that is missing is skipped with a note.

    python bench/make_bench.py [--only overhead demo] [--out BENCHMARKS.md]
    python bench/make_bench.py --render      # no benchmark run: fold an edited bench/RESULTS.md in again

With --only, the other topics keep the fresh sections the file already holds; --render keeps all of them and
the header.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from benchkit import REPO, loadavg, machine, snapshot_env


@dataclass(frozen=True)
class Topic:
    key: str
    title: str
    intro: str


TOPICS = [
    Topic(
        "overhead",
        "What the pipeline costs against a plain script",
        "One fine-tuning run through tunetrace against the Trainer script a user would write instead, and the "
        "cost of the pipeline's parts (monitor, capture, lineage).",
    ),
    Topic(
        "demo",
        "The demo end to end",
        "The embedded demo from an empty results tree: wall time, memory, and where the time goes.",
    ),
    Topic(
        "planning",
        "How the cost grows with the study",
        "Planning time and no-op reruns as tasks x methods x seeds grow.",
    ),
    Topic("storage", "Representations: storage and drift", "Bytes per capture and the drift computation."),
    Topic("scale", "Scale on a GPU", "bf16 and DeepSpeed on one GPU."),
    Topic("tasks", "Task types on real data", "Real-data checks of each task type."),
    Topic("other", "Other earlier measurements", ""),
]

# (script, options, topic); every script takes --section PATH.
BENCHES = [
    ("bench/bench_overhead.py", ["--quick"], "overhead"),
    ("bench/bench_demo.py", ["--quick"], "demo"),
    ("bench/bench_planning.py", ["--quick"], "planning"),
    ("bench/bench_storage.py", ["--quick"], "storage"),
]

# Earlier measurements (bench/RESULTS.md): heading prefix -> topic; a `###` without its own entry goes where its
# `##` goes.
EARLIER = {
    "Demo wall time": "demo",
    "Representation drift": "overhead",
    "compute_drift on the demo probe set": "storage",
    "Training monitor overhead": "overhead",
    "Lineage overhead": "overhead",
    "Pipeline overhead": "overhead",
    "Scale:": "scale",
    "Task types": "tasks",
    "Real data": "tasks",
    "Degenerate runs": "tasks",
    "No-op rerun": "planning",
}


def _topic_of(heading: str, default: str) -> str:
    return next((topic for prefix, topic in EARLIER.items() if heading.startswith(prefix)), default)


def split_earlier(text: str) -> dict[str, list[str]]:
    """bench/RESULTS.md cut at its `##`/`###` headings, each piece under its topic, headings one level down
    and without the issue numbers (the file is organised by topic, not by issue)."""
    pieces: dict[str, list[str]] = {}
    h2_topic, current, chunk = "other", None, []

    def flush() -> None:
        if current is not None and "".join(chunk).strip():
            pieces.setdefault(current, []).append("".join(chunk).rstrip() + "\n")

    for line in text.splitlines(keepends=True):
        match = re.match(r"^(#{2,3}) (.*)$", line.rstrip("\n"))
        if match:
            flush()
            title = re.sub(r"\s*\(issue \d+\)", "", match.group(2))
            if len(match.group(1)) == 2:
                h2_topic = _topic_of(title, "other")
                current = h2_topic
                line = f"### Earlier: {title}\n"
            else:
                current = _topic_of(title, h2_topic)
                line = f"#### {title}\n" if current == h2_topic else f"### Earlier: {title}\n"
            chunk = [line]
        elif current is not None:
            chunk.append(line)
    flush()
    return pieces


def carried_over(text: str) -> tuple[str, dict[str, list[str]]]:
    """An existing BENCHMARKS.md: its header, and its fresh sections (not *Earlier*) by topic key."""
    titles = {topic.title: topic.key for topic in TOPICS}
    head, fresh, topic, chunk = [], {}, None, None

    def flush() -> None:
        if topic is not None and chunk:
            fresh.setdefault(topic, []).append("".join(chunk).rstrip() + "\n")

    for line in text.splitlines(keepends=True):
        h2 = re.match(r"^## \d+\. (.*)$", line.rstrip("\n"))
        if h2 or line.startswith("### "):
            flush()
            chunk = None
            if h2:
                topic = titles.get(h2.group(1))
            elif not line.startswith("### Earlier:"):
                chunk = [line]
        elif topic is None:
            head.append(line)
        elif chunk is not None:
            chunk.append(line)
    flush()
    header = "".join(line for line in head if not line.startswith("_`"))
    return header.rstrip() + "\n\n", fresh


def run_bench(script: str, options: list[str], workdir: Path, env: dict[str, str] | None = None) -> str:
    """One benchmark's section with its load average before/after and wall time, or a note why not."""
    if not (REPO / script).exists():
        return f"_`{script}` is not in this checkout yet: skipped._\n"
    section = workdir / (Path(script).stem + ".md")
    before, start = loadavg(), time.perf_counter()
    done = subprocess.run([sys.executable, script, *options, "--section", str(section)], cwd=REPO, env=env)
    wall, after = time.perf_counter() - start, loadavg()
    stamp = f"_Ran in {wall:.0f} s; load average (1/5/15 min) before {before}, after {after}._\n"
    if done.returncode or not section.exists():
        return f"_`{script} {' '.join(options)}` failed (exit {done.returncode}) after {wall:.0f} s._\n\n{stamp}"
    print(f"{script}: {wall:.0f} s", file=sys.stderr, flush=True)
    return section.read_text().rstrip() + "\n\n" + stamp


def header(total_s: float, commit: str, only: list[str] | None = None) -> str:
    facts = machine()
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    took = (
        f"`make bench` took {total_s / 60:.1f} min"
        if not only
        else f"`python bench/make_bench.py --only {' '.join(only)}` took {total_s / 60:.1f} min; the other topics' "
        "sections were carried over from earlier runs, each naming its own commit and date"
    )
    return (
        "# Benchmarks\n\n"
        "Written by `make bench` (`bench/make_bench.py`); do not edit by hand. Each section gives the command "
        "that reproduces it; sections titled *Earlier* are measurements kept from bench/RESULTS.md, each with "
        "its own date and machine state.\n\n"
        f"- Machine: {facts['cpu']}, {facts['cores']} cores, {facts['ram']} RAM; torch {facts['torch']}, "
        f"Python {facts['python']}\n"
        f"- Date: {now}; commit {commit}; {took}\n"
        "- The machine is shared: each section states the load average (1/5/15 min) before and after it; "
        "on 2 cores a load above 2 means other work took turns with the benchmark.\n\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", help="topics to run (others: skipped, earlier measurements kept)")
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument(
        "--render",
        action="store_true",
        help="run nothing: rewrite the file with its fresh sections and bench/RESULTS.md as it is now",
    )
    parser.add_argument(
        "--overhead-pairs",
        type=int,
        help="bench_overhead pairs per method instead of --quick's 3 "
        "(on a loaded machine; the section names the count)",
    )
    args = parser.parse_args()
    start = time.perf_counter()
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    earlier = split_earlier((REPO / "bench/RESULTS.md").read_text())
    old_header, kept = carried_over(args.out.read_text()) if args.out.exists() else ("", {})
    if args.render:
        if not old_header:
            raise SystemExit(f"{args.out}: nothing to re-render (no such file); run `make bench` first")
        write(args.out, old_header, kept, earlier, [])
        print(f"wrote {args.out} (no benchmark run)", file=sys.stderr)
        return
    chosen = [bench for bench in BENCHES if not args.only or bench[2] in args.only]
    if args.overhead_pairs:
        chosen = [(s, ["--pairs", str(args.overhead_pairs)] if t == "overhead" else o, t) for s, o, t in chosen]
    fresh: dict[str, list[str]] = {
        topic: sections for topic, sections in kept.items() if args.only and topic not in args.only
    }
    with tempfile.TemporaryDirectory() as workdir:
        demo = Path(workdir) / "demo"  # bench_demo leaves its finished demo here for bench_planning's no-op reruns
        for done, (script, options, topic) in enumerate(chosen, start=1):
            env = None
            if topic == "demo":
                options = [*options, "--keep", str(demo)]
            elif topic == "planning" and (demo / "results/comparison.json").exists():
                # the demo's own code (its snapshot's pkg/), else the code hashes differ and nothing is a no-op
                options, env = [*options, "--finished", str(demo)], snapshot_env(demo)
            fresh.setdefault(topic, []).append(run_bench(script, options, Path(workdir), env))
            # rewritten after each benchmark, so a run stopped part way leaves the sections it finished
            pending = [f"_`{s}` not run yet._\n" for s, _, _ in chosen[done:]]
            write(args.out, header(time.perf_counter() - start, commit, args.only), fresh, earlier, pending)
    print(f"wrote {args.out}", file=sys.stderr)


def write(out: Path, head: str, fresh: dict[str, list[str]], earlier: dict[str, list[str]], pending: list[str]) -> None:
    body = []
    for number, topic in enumerate((t for t in TOPICS if t.key in fresh or t.key in earlier), start=1):
        body.append(f"## {number}. {topic.title}\n\n" + (f"{topic.intro}\n\n" if topic.intro else ""))
        body += [text + "\n" for text in fresh.get(topic.key, []) + earlier.get(topic.key, [])]
    out.write_text(head + "".join(text + "\n" for text in pending) + "\n".join(body).rstrip() + "\n")


if __name__ == "__main__":
    main()
