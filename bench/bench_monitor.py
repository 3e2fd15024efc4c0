"""Cost of the training monitor: wall time of the same training with and without it, side by side.

Runs are interleaved (off, on, on, off, ...) so machine load drifts hit both arms alike, and the
time spent inside the monitor's own work (per-layer gradient norms, memory probes) is measured
directly, which does not depend on the load of the machine.

    PYTHONPATH=pkg python bench/bench_monitor.py --steps 20 --repeats 2 --logging-steps 5 1
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import tempfile
import time
from pathlib import Path

import torch

import tunetrace.training.monitor as callbacks
from tunetrace.config import MethodSpec, ModelSpec, TaskSpec, load_config
from tunetrace.stages.prepare import prepare_task_data
from tunetrace.training.loop import train_run

HOOK_TIME = {"s": 0.0}


def timed(fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            HOOK_TIME["s"] += time.perf_counter() - start

    return wrapper


callbacks.layer_grad_norms = timed(callbacks.layer_grad_norms)
callbacks.norm_stats = timed(callbacks.norm_stats)
callbacks.memory_stats = timed(callbacks.memory_stats)


def one_run(model, task, method, data, root: Path, monitor: bool, index: int) -> tuple[float, float]:
    HOOK_TIME["s"] = 0.0
    meta = train_run(model, task, method, 0, data, root / f"run{index}", monitor=monitor)
    return meta["train_wall_time_s"], HOOK_TIME["s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--method", default="full")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--logging-steps", type=int, nargs="+", default=[5, 1])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    config = load_config(args.config)
    name = sorted(config["tasks"])[0]
    task = TaskSpec.from_dict(name, config["tasks"][name])
    model = ModelSpec.from_dict(config["model"])
    print(f"torch threads {torch.get_num_threads()}, task {name}, method {args.method}, {args.steps} steps\n")
    print(
        "| logging_steps | wall off (s, median) | wall on (s, median) | ratio on/off | "
        "monitor's own work (s) | share of wall |"
    )
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        prepare_task_data(task, root / "data")
        for every in args.logging_steps:
            method = dataclasses.replace(
                MethodSpec.from_dict(args.method, config["methods"][args.method]),
                max_steps=args.steps,
                logging_steps=every,
                save_every_steps=None,
            )
            off, on, hook = [], [], []
            for rep in range(args.repeats):
                for monitor in (False, True) if rep % 2 == 0 else (True, False):
                    wall, inside = one_run(
                        model, task, method, root / "data", root / f"l{every}", monitor, len(off) + len(on)
                    )
                    (on if monitor else off).append(wall)
                    if monitor:
                        hook.append(inside)
            w_off, w_on, h = statistics.median(off), statistics.median(on), statistics.median(hook)
            print(f"| {every} | {w_off:.2f} | {w_on:.2f} | {w_on / w_off:.3f} | {h:.3f} | {h / w_on:.2%} |", flush=True)


if __name__ == "__main__":
    main()
