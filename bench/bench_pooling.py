"""Classification head, cls vs mean pooling: the table of bench/RESULTS.md ("Classification head: cls vs mean
pooling"). Every task of a study config is trained and evaluated once per pooling, with the same data,
hyperparameters and seed, through the library (prepare_task_data, train_run, evaluate_run; LoRA methods also
merge_adapter and verify_merge). Run it from the checkout, beside ../shared/data:

    python bench/bench_pooling.py --config bench/pooling_sst2.yaml --out bench-out/pooling_sst2
    python bench/bench_pooling.py --config bench/pooling_rte.yaml --out bench-out/pooling_rte
    python bench/bench_pooling.py --config config/config.yaml --seed 0 --out bench-out/pooling_demo

Finished runs (their bench.json exists) are reused, so an interrupted benchmark continues; each run's
numbers, wall times and the load average at its start and end go to <out>/<task>/<pooling>/<method>/bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pkg"))

from tunetrace import artifacts as A  # noqa: E402
from tunetrace.config import EvalSpec, MethodSpec, ModelSpec, TaskSpec, validate_config  # noqa: E402

POOLINGS = ("cls", "mean")


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def run_one(
    model: ModelSpec, task: TaskSpec, method: MethodSpec, spec: EvalSpec, seed: int, data: Path, out: Path
) -> dict[str, Any]:
    """Train, evaluate (and merge + verify for LoRA) one run; its numbers, wall times and load averages."""
    from tunetrace.stages.merge import merge_adapter
    from tunetrace.stages.pilot import score_pilot
    from tunetrace.stages.verify_merge import verify_merge
    from tunetrace.training.loop import train_run

    result: dict[str, Any] = {"load_start": _load()}
    start = time.time()
    train_run(model, task, method, seed, data, out / "run")
    result["train_wall_s"] = time.time() - start
    start = time.time()
    metrics = score_pilot(model, task, method, spec, seed, data, out / "run", out / "eval")
    result["eval_wall_s"] = time.time() - start
    if method.is_lora:
        merge_adapter(model, task, out / "run" / A.FINAL_DIR, out / "merged")
        check = verify_merge(
            model, task, spec, data, out / "run" / A.FINAL_DIR, out / "merged", out / "merge_check.json"
        )
        result["merge_check"] = {"passed": check["passed"], **{k: q["value"] for k, q in check["quantities"].items()}}
    run = json.loads((out / "run" / A.RUN_METADATA).read_text())
    metric = metrics["primary_metric"]
    result.update(
        {
            "load_end": _load(),
            "pooling": run["pooling"],
            "steps": run["global_steps"],
            "train_time_s": run["train_wall_time_s"],
            "metric": metric,
            "value": metrics[metric],
            "ci": metrics.get("ci", {}).get(metric),
        }
    )
    (out / "bench.json").write_text(json.dumps(result, indent=1))
    return result


def row(task: str, method: str, rows: tuple[int, int], r: dict[str, Any]) -> str:
    ci = r["ci"] or [float("nan")] * 2
    merge = r.get("merge_check")
    merge_txt = (
        "n/a" if merge is None else f"{'pass' if merge['passed'] else 'FAIL'} ({merge['max_abs_logit_diff']:.1e})"
    )
    return (
        f"| {task} | {method} | {r['pooling']} | {rows[0]} / {rows[1]} | {r['steps']} "
        f"| {r['metric']} {r['value']:.4f} [{ci[0]:.3f}, {ci[1]:.3f}] | {r['train_wall_s']:.0f} "
        f"| {r['eval_wall_s']:.0f} | {r['load_start']} → {r['load_end']} | {merge_txt} |"
    )


def paired_difference(first: Path, second: Path, samples: int = 1000) -> dict[str, float]:
    """second minus first on the same eval examples (matched by id): accuracy difference with a paired 95%
    bootstrap interval, the discordant pairs and McNemar's exact p-value."""
    import numpy as np
    import pandas as pd
    from scipy.stats import binomtest

    a, b = (pd.read_parquet(f).set_index(A.COL_ID)["correct"].astype(float) for f in (first, second))
    diff = (b.loc[a.index] - a).to_numpy()
    rng = np.random.default_rng(0)
    boot = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(samples)]
    only_second, only_first = int((diff > 0).sum()), int((diff < 0).sum())
    p = binomtest(only_second, only_second + only_first).pvalue if only_second + only_first else 1.0
    return {
        "diff": float(diff.mean()),
        "lo": float(np.percentile(boot, 2.5)),
        "hi": float(np.percentile(boot, 97.5)),
        "only_second": only_second,
        "only_first": only_first,
        "p": float(p),
    }


def paired(task_dir: Path, method: str, samples: int = 1000) -> str | None:
    """mean minus cls on the same dev examples (one seed: this is run-to-run noise plus the pooling)."""
    files = [task_dir / pooling / method / "eval" / "predictions.parquet" for pooling in POOLINGS]
    if not all(f.exists() for f in files):
        return None
    d = paired_difference(*files, samples=samples)
    return (
        f"| {task_dir.name} | {method} | {d['diff']:+.4f} [{d['lo']:+.3f}, {d['hi']:+.3f}] "
        f"| {d['only_second']} / {d['only_first']} | {d['p']:.2f} |"
    )


def run_study(
    config_path: str | Path,
    out: Path,
    seed: int | None = None,
    poolings: list[str] | None = None,
    methods: list[str] | None = None,
) -> list[tuple[str, str, tuple[int, int], dict[str, Any]]]:
    """Every task x pooling x method of a study config, trained once (finished runs reused): (task, method,
    (train rows, eval rows), bench.json) per run. poolings None: each task's own `pooling`; methods None: all."""
    from tunetrace.stages.prepare import prepare_task_data

    config = validate_config(yaml.safe_load(Path(config_path).read_text()))
    model, spec = ModelSpec.from_dict(config["model"]), EvalSpec.from_dict(config["evaluation"])
    seed = config["seeds"][0] if seed is None else seed
    results = []
    for name, task_config in config["tasks"].items():
        data = out / name / "data"
        if not (data / A.DATA_MANIFEST).exists():
            prepare_task_data(TaskSpec.from_dict(name, task_config), data)
        splits = json.loads((data / A.DATA_MANIFEST).read_text())["splits"]
        rows = (splits["train"]["rows"], splits["eval"]["rows"])
        for pooling in poolings or [task_config["pooling"]]:
            task = TaskSpec.from_dict(name, {**task_config, "pooling": pooling})
            for method_name, method_config in config["methods"].items():
                if methods and method_name not in methods:
                    continue
                run_dir = out / name / pooling / method_name
                done = run_dir / "bench.json"
                result = (
                    json.loads(done.read_text())
                    if done.exists()
                    else run_one(
                        model, task, MethodSpec.from_dict(method_name, method_config), spec, seed, data, run_dir
                    )
                )
                results.append((name, method_name, rows, result))
                print(row(name, method_name, rows, result), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a study config (tasks, methods, model, evaluation)")
    parser.add_argument("--out", required=True, help="scratch directory for data, runs and results")
    parser.add_argument("--seed", type=int, help="one seed (default: the config's first)")
    parser.add_argument("--poolings", nargs="+", default=list(POOLINGS), choices=POOLINGS)
    args = parser.parse_args()
    results = run_study(args.config, Path(args.out), args.seed, args.poolings)
    config = yaml.safe_load(Path(args.config).read_text())
    print(
        "\n| task | method | pooling | train / dev rows | steps | dev metric [95% CI] | train s | eval s "
        "| load avg start → end (1/5/15 min) | merge check |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    print("\n".join(row(*r) for r in results))
    pairs = [paired(Path(args.out) / name, method) for name in config["tasks"] for method in config["methods"]]
    print(
        "\n| task | method | mean - cls accuracy [paired 95% CI] | right only with mean / only with cls "
        "| McNemar p |\n|---|---|---|---|---|"
    )
    print("\n".join(p for p in pairs if p))


if __name__ == "__main__":
    main()
