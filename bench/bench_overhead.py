"""tunetrace against the plain Trainer script a user would write instead: one run, side by side.

In a snapshot of HEAD (a clone; its pkg/ on PYTHONPATH), per method: plain, pipeline, plain, pipeline ...
- plain: `python bench/plain_trainer.py` (train, checkpoint every 30 steps, save, evaluate), whole process;
- pipeline: `snakemake results/eval/<method>/demo_sentiment/seed0/metrics.json --cores 2` from an empty
  results tree (prepare_data, check_model, train_run, evaluate_run), whole process.
--machine-cache: `warm` (default) runs every pipeline study on a machine that has run a study of this model before
(one `check_model` before the pairs fills what a machine keeps between studies: the model layout check_model caches,
models.layout; the rules' parsed code imports, provenance.codehash; the package's compiled bytecode), as every study
after a user's first one does; `cold` empties all three before each pipeline study, as a user's first study on a
machine. (`--layout-cache` is the option's former name.)
The bench config is the demo's minus `representations.every_steps: 30` (a demo choice): default capture,
monitor and lineage settings. Then one pair per method at each --long-epochs (the same run, longer): the pipeline's
fixed costs (processes, the model check, Snakemake) stay, so the ratio falls with the run's length.
The breakdown of the pipeline's extra time comes from the jobs' benchmark files,
their logs (model loads, captures, lineage) and direct timings (imports, checksums).

    python bench/bench_overhead.py --pairs 3 [--methods full lora_r8] [--long-epochs 6 [12 ...]]
        [--machine-cache warm|cold] [--section out.md]
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from benchkit import (
    REPO,
    Job,
    collect_jobs,
    fresh_tree,
    jobs_union_s,
    loadavg,
    md_table,
    median,
    snapshot,
    snapshot_env,
    timed,
)

TASK = "demo_sentiment"
TRAIN, EVAL = "data/demo/sentiment_train.csv", "data/demo/sentiment_eval.csv"
GOAL_WALL, GOAL_THROUGHPUT = 1.10, 0.97
# the jobs one training run adds to a study (the first measure: train_run + evaluate_run); prepare_data and
# check_model run once per task, Snakemake's own start-up and planning once per invocation
RUN_RULES = ("train_run", "evaluate_run")
TASK_RULES = ("prepare_data", "check_model")


def bench_config(study: Path, demo_representations: bool = False) -> dict:
    """The demo config with default representation settings (the demo's own with `demo_representations`) and
    training threads, written over the snapshot's config.yaml (a --configfile is merged into it and could not
    remove the keys)."""
    path = study / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    if not demo_representations:
        config.pop("representations", None)
    for method in config["methods"].values():
        # the demo's `resources: {cpus: 1}` (two runs side by side) does not fit one run: train on the 2 threads
        # the plain script uses (the schema default)
        method.pop("resources", None)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def plain_args(method: dict) -> list[str]:
    """plain_trainer.py options for a demo method (its other settings are the demo's, fixed in the script)."""
    args = ["--lr", str(method["learning_rate"]), "--epochs", str(method["epochs"])]
    if method["type"] == "lora":
        args += ["--lora-r", str(method["lora"]["r"])]
    return args


def set_epochs(study: Path, config: dict, epochs: float) -> dict:
    """The bench config with every method trained for `epochs`, written over the snapshot's config.yaml."""
    for method in config["methods"].values():
        method["epochs"] = epochs
    (study / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def run_plain(study: Path, env: dict, model: str, method: dict, tag: str) -> dict:
    out = Path(tempfile.mkdtemp(prefix="plain-", dir=study))
    log = study / f"plain-{tag}.log"
    cmd = [
        sys.executable,
        "bench/plain_trainer.py",
        "--model",
        model,
        "--train",
        TRAIN,
        "--eval",
        EVAL,
        "--out",
        str(out),
        *plain_args(method),
    ]
    wall = timed(cmd, study, env, log)
    result = next(json.loads(line) for line in reversed(log.read_text().splitlines()) if line.startswith('{"accuracy"'))
    subprocess.run(["rm", "-rf", str(out)], check=True)
    return {"wall": wall, "sps": result["train_samples_per_second"], "accuracy": result["accuracy"]}


def layout_cache(env: dict) -> Path:
    return Path(env["TUNETRACE_CACHE"]) / "model-layouts"


def prime_machine_cache(study: Path, env: dict) -> None:
    """One check_model of the bench task, so that the pipeline studies find what a machine keeps between studies:
    the model's layout, the rules' parsed imports and the package's bytecode."""
    fresh_tree(study)
    timed(
        [str(study / ".venv/bin/snakemake"), f"results/checks/model/{TASK}.json", "--cores", "2"],
        study,
        env,
        study / "snakemake-prime.log",
    )
    if not any(layout_cache(env).glob("*.json")):
        raise SystemExit(f"check_model cached no model layout in {layout_cache(env)}; see {study}/logs/check_model")


def empty_machine_cache(study: Path, env: dict) -> None:
    """A user's first study on a machine: no cached model layout or parsed imports, no compiled tunetrace code."""
    shutil.rmtree(env["TUNETRACE_CACHE"], ignore_errors=True)
    for compiled in (study / "pkg").rglob("__pycache__"):
        shutil.rmtree(compiled, ignore_errors=True)


def run_pipeline(study: Path, env: dict, method_name: str, tag: str, cold: bool = False) -> dict:
    fresh_tree(study)
    if cold:
        empty_machine_cache(study, env)
    target = f"results/eval/{method_name}/{TASK}/seed0/metrics.json"
    wall = timed(
        [str(study / ".venv/bin/snakemake"), target, "--cores", "2"], study, env, study / f"snakemake-{tag}.log"
    )
    run = json.loads((study / f"results/runs/{method_name}/{TASK}/seed0/run.json").read_text())
    metrics = json.loads((study / target).read_text())
    jobs = collect_jobs(study)
    return {
        "wall": wall,
        "sps": run["train_samples_per_second"],
        # the loop's samples/s without its representation captures (run.json; the Trainer counts them as training)
        "sps_no_capture": (run.get("representation_captures_in_loop") or {}).get("train_samples_per_second_without")
        or run["train_samples_per_second"],
        "captures_s": (run.get("representation_captures_in_loop") or {}).get("seconds", 0.0),
        "accuracy": metrics["accuracy"],
        "jobs": jobs,
        "run_jobs": sum(job.wall_s for job in jobs if job.rule in RUN_RULES),
        "checksums": time_checksums(study, env, method_name),
    }


def time_checksums(study: Path, env: dict, method_name: str) -> float:
    """Seconds of write_checksums over the run's saved checkpoint dirs and final model (page cache warm, as
    in the job right after writing them)."""
    run_dir = study / f"results/runs/{method_name}/{TASK}/seed0"
    code = (
        "import sys, time\nfrom tunetrace.training.checkpoints import write_checksums\n"
        "start = time.perf_counter()\nfor d in sys.argv[1:]: write_checksums(d)\n"
        "print(time.perf_counter() - start)"
    )
    dirs = [str(p) for p in sorted((run_dir / "checkpoints").glob("checkpoint-*")) + [run_dir / "final"]]
    done = subprocess.run([sys.executable, "-c", code, *dirs], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def interpreter_walls(code: str, study: Path, env: dict, repeats: int) -> list[float]:
    """Wall seconds of `python -c code` in a fresh interpreter, `repeats` times."""
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], cwd=study, env=env, check=True, capture_output=True)
        walls.append(time.perf_counter() - start)
    return walls


def torch_import_s(study: Path, env: dict, repeats: int = 3) -> float:
    """Median fresh-interpreter `import torch` time: a probe of the machine's speed, which drifts on a shared host
    (it read 1.5 to 1.9 s within one afternoon here)."""
    return median(interpreter_walls("import torch", study, env, repeats))


def script_imports(path: Path) -> str:
    """The module-level import statements of a workflow script, as code."""
    tree = ast.parse(path.read_text())
    return "\n".join(ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom))


def import_times(study: Path, env: dict, rules: list[str], repeats: int = 2) -> dict[str, float]:
    """Fresh-interpreter seconds to import each rule's workflow-script imports (`python -c pass` as `python`)."""
    out = {}
    for rule in ["python", *rules]:
        code = "pass" if rule == "python" else script_imports(study / "workflow_scripts" / f"{rule}.py")
        out[rule] = min(interpreter_walls(code, study, env, repeats))
    return out


def breakdown(pipe: dict) -> dict[str, float]:
    """The pipeline run's time by where it went (seconds)."""
    jobs: list[Job] = pipe["jobs"]
    busy = jobs_union_s(jobs)
    train = [job for job in jobs if job.rule == "train_run"]
    return {
        "snakemake own (total - time any job ran)": pipe["wall"] - busy,
        "jobs (union of job wall times)": busy,
        "jobs: start-up, imports, exit (job wall - log span)": sum(max(j.wall_s - j.log.span_s, 0) for j in jobs),
        "model loads (count)": sum(len(j.log.model_loads) for j in jobs),
        "model loads (s)": sum(sum(j.log.model_loads) for j in jobs),
        "representation captures (s)": sum(sum(j.log.captures) for j in jobs),
        "lineage records (s)": sum(sum(j.log.lineage) for j in jobs),
        "checksums of checkpoints + final (s, timed apart)": pipe["checksums"],
        "train_run job wall": sum(j.wall_s for j in train),
    }


def scopes(plain: dict, pipe: dict) -> dict[str, float]:
    """The pipeline's extra seconds by how often a study pays them: once per `snakemake` call, once per task
    (prepare_data and check_model, as far as they ran before training started), once per training run."""
    jobs: list[Job] = pipe["jobs"]
    first_run_start = min(job.end - job.wall_s for job in jobs if job.rule in RUN_RULES)
    task_jobs = [job for job in jobs if job.rule in TASK_RULES]
    return {
        "per invocation": pipe["wall"] - jobs_union_s(jobs),
        "per task": jobs_union_s(task_jobs) if task_jobs and max(j.end for j in task_jobs) <= first_run_start else 0.0,
        "per run": pipe["run_jobs"] - plain["wall"],
    }


def crossover(points: list[tuple[float, float, float]]) -> tuple[float, float] | None:
    """Epochs and plain wall time (s) at which the whole-process ratio falls to GOAL_WALL, from straight lines
    through (epochs, plain wall, pipeline wall) by least squares; None when the lines never get there."""
    xs = [e for e, _, _ in points]
    if len(set(xs)) < 2:
        return None
    p1, p0 = statistics.linear_regression(xs, [p for _, p, _ in points])
    q1, q0 = statistics.linear_regression(xs, [q for _, _, q in points])
    if GOAL_WALL * p1 - q1 <= 0:
        return None
    epochs = (q0 - GOAL_WALL * p0) / (GOAL_WALL * p1 - q1)
    return epochs, p0 + p1 * epochs


def _gap_trend(points: list[tuple[float, float, float]]) -> str:
    """How the pipeline's extra seconds moved from the shortest to the longest run (the crossing's premise)."""
    (e0, p0, q0), (e1, p1, q1) = min(points), max(points)
    return f"{q0 - p0:.1f} s at {e0:g} epochs, {q1 - p1:.1f} s at {e1:g}"


def per_rule(pipes: list[dict]) -> list[list[object]]:
    """Median per rule over the pipeline runs: job wall, log span, start-up share, model loads."""
    first_end = {}
    for job in sorted((job for pipe in pipes for job in pipe["jobs"]), key=lambda job: job.end):
        first_end.setdefault(job.rule, len(first_end))
    rules = sorted(first_end, key=first_end.get)
    rows = []
    for rule in rules:
        jobs = [job for pipe in pipes for job in pipe["jobs"] if job.rule == rule]
        rows.append(
            [
                rule,
                median([j.wall_s for j in jobs]),
                median([j.log.span_s for j in jobs]),
                median([max(j.wall_s - j.log.span_s, 0) for j in jobs]),
                median([len(j.log.model_loads) for j in jobs]),
                median([sum(j.log.model_loads) for j in jobs]),
                median([j.max_rss_mb for j in jobs]),
            ]
        )
    return rows


def method_section(name: str, plains: list[dict], pipes: list[dict]) -> tuple[list[str], list[object]]:
    both = list(zip(plains, pipes, strict=True))
    walls = [q["wall"] / p["wall"] for p, q in both]
    per_runs = [q["run_jobs"] / p["wall"] for p, q in both]
    speeds = [q["sps"] / p["sps"] for p, q in both]
    bare = [q["sps_no_capture"] / p["sps"] for p, q in both]
    pairs = [
        [
            i + 1,
            p["wall"],
            q["wall"],
            walls[i],
            per_runs[i],
            p["sps"],
            q["sps"],
            speeds[i],
            q["captures_s"],
            bare[i],
            p["accuracy"],
            q["accuracy"],
        ]
        for i, (p, q) in enumerate(both)
    ]
    wall, per_run, sps = median(walls), median(per_runs), median(speeds)
    parts = [
        f"#### `{name}`: interleaved pairs (plain first)",
        "",
        md_table(
            [
                "pair",
                "plain wall (s)",
                "pipeline wall (s)",
                "wall ratio",
                "per-run jobs ratio",
                "plain samples/s",
                "pipeline samples/s",
                "throughput ratio",
                "captures in the loop (s)",
                "throughput ratio without them",
                "plain accuracy",
                "pipeline accuracy",
            ],
            pairs,
        ),
        "",
    ]
    rows = [
        ["pipeline wall - plain wall", median([q["wall"] - p["wall"] for p, q in both])],
        *_median_rows([breakdown(q) for q in pipes]),
    ]
    scope_rows = _median_rows([scopes(p, q) for p, q in both])
    parts += [
        f"#### `{name}`: where the pipeline's time goes (median over the pairs)",
        "",
        md_table(["item", "seconds"], rows),
        "",
        md_table(["extra seconds, paid once", "seconds"], scope_rows),
        "",
        md_table(
            [
                "rule",
                "job wall (s)",
                "log span (s)",
                "start-up + imports + exit (s)",
                "model loads",
                "load time (s)",
                "max RSS (MB)",
            ],
            per_rule(pipes),
        ),
        "",
    ]
    summary = [
        name,
        median([p["wall"] for p in plains]),
        median([q["wall"] for q in pipes]),
        wall,
        _verdict(wall <= GOAL_WALL, walls),
        per_run,
        _verdict(per_run <= GOAL_WALL, per_runs),
        sps,
        _verdict(sps >= GOAL_THROUGHPUT, speeds),
        median([p["accuracy"] for p in plains]),
        median([q["accuracy"] for q in pipes]),
    ]
    return parts, summary


def _median_rows(per_pair: list[dict[str, float]]) -> list[list[object]]:
    """[key, median over the pairs] for each key of per-pair dicts (all with the same keys)."""
    return [[key, median([values[key] for values in per_pair])] for key in per_pair[0]]


def _verdict(met: bool, ratios: list[float]) -> str:
    """Whether the median meets its goal, with the spread of the pairs (the machine's noise shows there)."""
    spread = f" (pairs {min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else ""
    return ("yes" if met else "**no**") + spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="3 pairs per method")
    parser.add_argument("--methods", nargs="+", default=["full", "lora_r8"])
    parser.add_argument(
        "--long-epochs",
        type=float,
        nargs="+",
        default=[6],
        help="one more pair per method at each of these epoch counts (the demo's: 3); 0 = none",
    )
    parser.add_argument("--section", type=Path, help="write the markdown section here (else print it)")
    parser.add_argument(
        "--machine-cache",
        "--layout-cache",
        dest="machine_cache",
        choices=["warm", "cold"],
        default="warm",
        help="what a machine keeps between studies (model layout, parsed code imports, bytecode): "
        "primed once (warm: every study after a user's first) or emptied before each pipeline "
        "study (cold: the first)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the snapshot (its path is printed)")
    parser.add_argument(
        "--demo-representations",
        action="store_true",
        help="keep the demo's representations settings (every_steps 30: captures inside the training loop) "
        "instead of the defaults",
    )
    args = parser.parse_args()
    demo_methods = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["methods"]
    unknown = sorted(set(args.methods) - set(demo_methods))
    if unknown:
        parser.error(
            f"--methods {' '.join(unknown)}: not a method of config/config.yaml; choose from {', '.join(demo_methods)}"
        )
    pairs = 3 if args.quick else args.pairs
    if pairs < 1:
        parser.error(f"--pairs {pairs}: at least one plain/pipeline pair per method is needed for the medians")
    load_before, start = loadavg(), time.perf_counter()
    study = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    commit = snapshot(study / "repo")
    study = study / "repo"
    env = snapshot_env(study)
    config = bench_config(study, args.demo_representations)
    probes = [torch_import_s(study, env)]
    model = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tunetrace.models.embedded import resolve_embedded as r; print(r('all-MiniLM-L6-v2'))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    cold = args.machine_cache == "cold"
    if not cold:
        prime_machine_cache(study, env)
    sections, summaries, loads = [], [], []
    for name in args.methods:
        plains, pipes = [], []
        for i in range(pairs):
            loads.append(loadavg())
            plains.append(run_plain(study, env, model, config["methods"][name], f"{name}-{i}"))
            pipes.append(run_pipeline(study, env, name, f"{name}-{i}", cold))
            print(
                f"{name} pair {i + 1}: plain {plains[-1]['wall']:.1f} s, pipeline {pipes[-1]['wall']:.1f} s "
                f"(load {loads[-1]})",
                file=sys.stderr,
                flush=True,
            )
        parts, summary = method_section(name, plains, pipes)
        sections += parts
        summaries.append(summary)
    lengths, crossings = [], []
    long_epochs = [epochs for epochs in args.long_epochs if epochs]
    if long_epochs:
        short = {name: config["methods"][name]["epochs"] for name in args.methods}
        rows: dict[str, list[list[object]]] = {}
        points: dict[str, list[tuple[float, float, float]]] = {}
        for name in args.methods:
            short_row = next(s for s in summaries if s[0] == name)
            rows[name] = [
                [
                    name,
                    f"{short[name]:g}",
                    short_row[1],
                    short_row[2],
                    short_row[2] - short_row[1],
                    short_row[3],
                    short_row[5],
                    short_row[7],
                ]
            ]
            points[name] = [(float(short[name]), short_row[1], short_row[2])]
        for epochs in long_epochs:
            set_epochs(study, config, epochs)
            for name in args.methods:
                loads.append(loadavg())
                plain = run_plain(study, env, model, config["methods"][name], f"{name}-long{epochs:g}")
                pipe = run_pipeline(study, env, name, f"{name}-long{epochs:g}", cold)
                print(
                    f"{name} at {epochs:g} epochs: plain {plain['wall']:.1f} s, pipeline {pipe['wall']:.1f} s "
                    f"(load {loads[-1]})",
                    file=sys.stderr,
                    flush=True,
                )
                rows[name].append(
                    [
                        name,
                        f"{epochs:g}",
                        plain["wall"],
                        pipe["wall"],
                        pipe["wall"] - plain["wall"],
                        pipe["wall"] / plain["wall"],
                        pipe["run_jobs"] / plain["wall"],
                        pipe["sps"] / plain["sps"],
                    ]
                )
                points[name].append((epochs, plain["wall"], pipe["wall"]))
        lengths = [row for name in args.methods for row in rows[name]]
        crossings = [
            [name, *(crossover(points[name]) or ("-", "-")), _gap_trend(points[name])] for name in args.methods
        ]
    probes.append(torch_import_s(study, env))
    rules = sorted({job.rule for job in pipes[0]["jobs"]})
    imports = import_times(study, env, rules)
    text = render(
        args,
        pairs,
        commit,
        summaries,
        sections,
        imports,
        load_before,
        loads,
        time.perf_counter() - start,
        lengths,
        crossings,
        probes,
    )
    if args.section:
        args.section.write_text(text)
    else:
        print(text)
    if args.keep:
        print(f"snapshot kept: {study}", file=sys.stderr)
    else:
        subprocess.run(["rm", "-rf", str(study.parent)], check=True)


def render(
    args, pairs, commit, summaries, sections, imports, load_before, loads, wall, lengths, crossings, probes
) -> str:
    command = (
        f"python bench/bench_overhead.py --pairs {pairs} --methods {' '.join(args.methods)} "
        f"--long-epochs {' '.join(f'{epochs:g}' for epochs in args.long_epochs)} "
        f"--machine-cache {args.machine_cache}" + (" --demo-representations" if args.demo_representations else "")
    )
    lines = [
        "### Pipeline vs the plain Trainer script (one run: prepare, train, evaluate)",
        "",
        f"Command: `{command}`",
        "",
        f"Snapshot of commit {commit}; load average before {load_before}, at each pair "
        f"{', '.join(loads)}, after {loadavg()}; {wall:.0f} s in all. Machine speed probe (fresh-interpreter "
        f"`import torch`, median of 3): {probes[0]:.2f} s before, {probes[1]:.2f} s after.",
        "",
        md_table(
            [
                "method",
                "plain wall (s, median)",
                "pipeline wall (s, median)",
                "wall ratio (goal <= 1.10)",
                "meets",
                "per-run jobs ratio (goal <= 1.10)",
                "meets",
                "throughput ratio (goal >= 0.97)",
                "meets",
                "plain accuracy",
                "pipeline accuracy",
            ],
            summaries,
        ),
        "",
        "- Plain: `bench/plain_trainer.py`, the ~40-line Trainer script a user would write (same data, "
        "hyperparameters, checkpoint every 30 steps, save_total_limit 2, evaluation on the eval split); "
        "pipeline: `snakemake results/eval/<method>/demo_sentiment/seed0/metrics.json --cores 2` from an "
        "empty results tree (prepare_data, check_model, train_run, evaluate_run). Wall time of the whole "
        "process each; ratios are pipeline / plain per pair, then the median.",
        "- Per-run jobs ratio: the wall time of the jobs one more training run adds to a study (train_run + "
        "evaluate_run, from their `benchmark:` files) over the plain script's whole process, the measure the "
        "issue's first figures used. The whole-process ratio adds what a study pays once: Snakemake's start-up "
        "and planning per `snakemake` call, and per task the data preparation and the model check that runs "
        "before any job loads weights (check_model; kept so that a bad model name, config or LoRA target fails "
        "one cheap job instead of every run of the study).",
        (
            "- Machine cache warm: one check_model before the pairs filled what a machine keeps between studies, "
            "as on a machine that has run a study of this model before: check_model found the model's layout "
            "cached and imported no torch, Snakemake found the rules' code imports parsed, Python the package's "
            "bytecode compiled. "
            if args.machine_cache == "warm"
            else "- Machine cache cold: emptied before each pipeline study, as a user's first study on a machine: "
            "check_model imported torch and the model's transformers code and built the model on the meta device, "
            "Snakemake parsed the rules' code imports, Python compiled the package. "
        )
        + "`--machine-cache cold|warm` gives the other case.",
        "- Throughput: the Trainer's `train_samples_per_second` (plain) against run.json's (pipeline).",
        "- Same backbone and compute, different head: the pipeline's embedded-model head is mean-pooled, the "
        "plain script's is AutoModelForSequenceClassification's CLS pooler (one extra 384x384 dense layer).",
        (
            "- Bench config: the demo's config/config.yaml as it is (`representations.every_steps: 30`: the "
            "pipeline captures the probe set's hidden states inside the Trainer's timed loop, which the plain "
            "script does not; `throughput ratio without them` takes their seconds out, from run.json)."
            if args.demo_representations
            else "- Bench config: the demo's config/config.yaml without its `representations.every_steps: 30` (a "
            "demo choice for the drift plots), so capture, monitor and lineage run with their defaults."
        ),
        "- Breakdown: job wall and max RSS from the `benchmark:` files; a job's end is its benchmark file's "
        "mtime, so Snakemake's own time is the total minus the union of job intervals; start-up + imports + exit "
        "is a job's wall minus the span of its log lines; model loads, captures and lineage from the jobs' "
        "`loaded model`, `captured` and `lineage: recorded` log lines; checksums timed apart on the run's "
        "saved directories. The monitor is not timed per run here (bench_monitor: 0.55 % of training at the "
        "default logging_steps 5).",
        "",
    ]
    if lengths:
        longer = ", ".join(f"{epochs:g}" for epochs in args.long_epochs if epochs)
        lines += [
            "#### The ratio against the run's length",
            "",
            "The same runs at the demo's 3 epochs (median of the pairs above) and at "
            f"{longer} epochs (one pair each, plain first). The pipeline's extra seconds are mostly "
            "fixed per run (processes, imports, the model check, Snakemake's planning), so the wall ratio "
            "falls as training grows; the throughput ratio is per sample and does not.",
            "",
            md_table(
                [
                    "method",
                    "epochs",
                    "plain wall (s)",
                    "pipeline wall (s)",
                    "pipeline - plain (s)",
                    "wall ratio (goal <= 1.10)",
                    "per-run jobs ratio (goal <= 1.10)",
                    "throughput ratio (goal >= 0.97)",
                ],
                lengths,
            ),
            "",
            "Where the whole-process ratio reaches the goal: straight lines through each method's points "
            "above (plain and pipeline wall against epochs, least squares) cross 1.10 at the run length "
            "below; `-` where they do not cross (the extra seconds grew with the run faster than 10 % of "
            "the plain script's time, a per-epoch cost or the machine's noise between the lengths).",
            "",
            md_table(["method", "epochs", "plain wall (s)", "pipeline - plain"], crossings),
            "",
        ]
    lines += sections
    lines += [
        "#### Import time of each workflow script's imports (fresh interpreter, best of 2)",
        "",
        md_table(["script", "seconds"], [[k, v] for k, v in imports.items()]),
        "",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
