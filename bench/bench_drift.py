"""Benchmark: cost of representation capture during training, and compute_drift time.

Run from the repository root after the demo has prepared its data (and, for the drift timing,
trained its runs):

    PYTHONPATH=pkg python bench/bench_drift.py --repeats 2 --methods full lora_r8

1. Training wall time of the demo task with and without the representation callback at the
   default `representations` settings (schema defaults, not the demo's every_steps), runs
   interleaved (without, with, without, with, ...) in one process so machine load hits both alike.
   Also the time spent inside the callback itself, which is not affected by other load.
2. compute_drift (all layers, all saved steps, table + heatmap) for each demo run in
   results/representations/, and the table alone.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

from tunetrace.analysis.drift import drift_table
from tunetrace.analysis.representations import representation_callback
from tunetrace.analysis.steps import RepresentationSpec
from tunetrace.config import MethodSpec, ModelSpec, TaskSpec, load_config, load_schema
from tunetrace.stages.drift import compute_drift
from tunetrace.training.loop import train_run


def _default_representations() -> RepresentationSpec:
    props = load_schema()["properties"]["representations"]["properties"]
    return RepresentationSpec.from_dict({k: v["default"] for k, v in props.items()})


def _timed_callback(model, task, spec, data_dir, out_dir, run):  # type: ignore[no-untyped-def]
    """The real callback, with the seconds spent in its captures counted."""
    import tunetrace.analysis.representations as R

    spent = [0.0]
    original = R.capture_step

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - start

    callback = representation_callback(model, task, spec, data_dir, out_dir, run)
    R.capture_step = counting  # the callback looks capture_step up at call time
    return callback, spent, lambda: setattr(R, "capture_step", original)


def bench_training(
    config: dict, task_name: str, methods: list[str], repeats: int, data_dir: Path, max_steps: int | None = None
) -> list[dict]:
    model = ModelSpec.from_dict(config["model"])
    task = TaskSpec.from_dict(task_name, config["tasks"][task_name])
    spec = _default_representations()
    rows = []
    for name in methods:
        overrides = {"save_every_steps": None, **({"max_steps": max_steps} if max_steps else {})}
        method = MethodSpec.from_dict(name, {**config["methods"][name], **overrides})
        times: dict[str, list[float]] = {"without": [], "with": []}
        in_callback: list[float] = []
        steps = 0
        for _ in range(repeats):
            for mode in ("without", "with"):
                with tempfile.TemporaryDirectory() as tmp:
                    callbacks, restore = [], None
                    start = time.perf_counter()  # includes building the probe set (tokenizer, batches)
                    if mode == "with":
                        callback, spent, restore = _timed_callback(
                            model, task, spec, data_dir, Path(tmp) / "reps", name
                        )
                        callbacks = [callback]
                    meta = train_run(model, task, method, 0, data_dir, Path(tmp) / "run", callbacks=callbacks)
                    times[mode].append(time.perf_counter() - start)
                    steps = meta["global_steps"]
                    if restore:
                        restore()
                        in_callback.append(spent[0])
        without, with_ = statistics.median(times["without"]), statistics.median(times["with"])
        rows.append(
            {
                "method": name,
                "steps": steps,
                "without_s": without,
                "with_s": with_,
                "ratio": with_ / without,
                "callback_s": statistics.median(in_callback),
                "callback_share": statistics.median(in_callback) / without,
                "all_without": times["without"],
                "all_with": times["with"],
            }
        )
    return rows


def bench_drift(task_name: str, repeats: int, root: Path) -> list[dict]:
    rows = []
    base = root / "representations" / "base" / task_name / "step_000000"
    for run_dir in sorted((root / "representations").glob(f"*/{task_name}/seed*")):
        method, seed = run_dir.parts[-3], int(run_dir.name.removeprefix("seed"))
        identity = {"method": method, "task": task_name, "seed": seed}
        full, table = [], []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(repeats):
                start = time.perf_counter()
                frame = compute_drift(
                    base,
                    run_dir,
                    RepresentationSpec.from_dict({}),
                    identity,
                    Path(tmp) / "d.parquet",
                    Path(tmp) / "h.png",
                )
                full.append(time.perf_counter() - start)
                start = time.perf_counter()
                with threadpool_limits(limits=1):  # as compute_drift does
                    drift_table(base, run_dir, identity)
                table.append(time.perf_counter() - start)
        rows.append(
            {
                "run": f"{method}/seed{seed}",
                "steps": frame["step"].nunique(),
                "layers": frame["layer"].nunique(),
                "probe": int(frame["rows"].iloc[0]),
                "compute_drift_s": min(full),
                "table_only_s": min(table),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--task", default="demo_sentiment")
    parser.add_argument("--methods", nargs="+", default=["full"])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--results", default="results")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--skip-drift", action="store_true")
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="shorter training (fewer steps make the capture share larger: an upper bound)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(2)
    config = load_config(args.config)
    root = Path(args.results)
    if not args.skip_training:
        print("| method | steps | train without (s) | train with (s) | ratio | time in capture (s) | capture share |")
        print("|---|---|---|---|---|---|---|")
        for r in bench_training(
            config, args.task, args.methods, args.repeats, root / "data" / args.task, args.max_steps
        ):
            print(
                f"| {r['method']} | {r['steps']} | {r['without_s']:.1f} | {r['with_s']:.1f} | {r['ratio']:.3f} "
                f"| {r['callback_s']:.2f} | {100 * r['callback_share']:.1f}% |  "
                f"<!-- all: {r['all_without']} {r['all_with']} -->"
            )
    if args.skip_drift:
        return
    print()
    print("| run | steps | layers | probe examples | compute_drift incl. heatmap (s) | table only (s) |")
    print("|---|---|---|---|---|---|")
    for r in bench_drift(args.task, args.repeats, root):
        print(
            f"| {r['run']} | {r['steps']} | {r['layers']} | {r['probe']} | "
            f"{r['compute_drift_s']:.2f} | {r['table_only_s']:.2f} |"
        )


if __name__ == "__main__":
    main()
