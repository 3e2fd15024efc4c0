"""Classification head, cls vs mean pooling: the table of bench/RESULTS.md ("Classification head: cls vs mean
pooling"). Every task of a study config is trained and evaluated once per pooling, with the same data,
hyperparameters and seed, through the library (prepare_task_data, train_run, evaluate_run; LoRA methods also
merge_adapter and verify_merge). Run it from the checkout, beside ../shared/data:

    python bench/bench_pooling.py --config bench/pooling_sst2.yaml --out /tmp/pooling_sst2
    python bench/bench_pooling.py --config bench/pooling_rte.yaml --out /tmp/pooling_rte
    python bench/bench_pooling.py --config config/config.yaml --seed 0 --out /tmp/pooling_demo

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


def run_one(model: ModelSpec, task: TaskSpec, method: MethodSpec, spec: EvalSpec, seed: int, data: Path,
            out: Path) -> dict[str, Any]:
    """Train, evaluate (and merge + verify for LoRA) one run; its numbers, wall times and load averages."""
    from tunetrace.evaluation.evaluate import evaluate_run
    from tunetrace.evaluation.merge import merge_adapter, verify_merge
    from tunetrace.training.loop import train_run

    result: dict[str, Any] = {"load_start": _load()}
    start = time.time()
    train_run(model, task, method, seed, data, out / "run")
    result["train_wall_s"] = time.time() - start
    start = time.time()
    metrics = evaluate_run(model, task, method, spec, seed, data, out / "run", out / "eval")
    result["eval_wall_s"] = time.time() - start
    if method.is_lora:
        merge_adapter(model, task, out / "run" / A.FINAL_DIR, out / "merged")
        check = verify_merge(model, task, spec, data, out / "run" / A.FINAL_DIR, out / "merged",
                             out / "merge_check.json")
        result["merge_check"] = {"passed": check["passed"], **{k: q["value"] for k, q in check["quantities"].items()}}
    run = json.loads((out / "run" / A.RUN_METADATA).read_text())
    metric = metrics["primary_metric"]
    result.update({"load_end": _load(), "pooling": run["pooling"], "steps": run["global_steps"],
                   "train_time_s": run["train_wall_time_s"], "metric": metric, "value": metrics[metric],
                   "ci": metrics.get("ci", {}).get(metric)})
    (out / "bench.json").write_text(json.dumps(result, indent=1))
    return result


def row(task: str, method: str, rows: tuple[int, int], r: dict[str, Any]) -> str:
    ci = r["ci"] or [float("nan")] * 2
    merge = r.get("merge_check")
    merge_txt = ("n/a" if merge is None
                 else f"{'pass' if merge['passed'] else 'FAIL'} ({merge['max_abs_logit_diff']:.1e})")
    return (f"| {task} | {method} | {r['pooling']} | {rows[0]} / {rows[1]} | {r['steps']} "
            f"| {r['metric']} {r['value']:.4f} [{ci[0]:.3f}, {ci[1]:.3f}] | {r['train_wall_s']:.0f} "
            f"| {r['eval_wall_s']:.0f} | {r['load_start']} → {r['load_end']} | {merge_txt} |")


def paired(task_dir: Path, method: str, samples: int = 1000) -> str | None:
    """mean minus cls on the same dev examples: accuracy difference with a paired 95% bootstrap interval, the
    discordant pairs and McNemar's exact p-value (one seed: this is run-to-run noise plus the pooling)."""
    import numpy as np
    import pandas as pd
    from scipy.stats import binomtest

    files = [task_dir / pooling / method / "eval" / "predictions.parquet" for pooling in POOLINGS]
    if not all(f.exists() for f in files):
        return None
    cls, mean = (pd.read_parquet(f).set_index(A.COL_ID)["correct"].astype(float) for f in files)
    diff = (mean.loc[cls.index] - cls).to_numpy()  # the same examples, matched by id
    rng = np.random.default_rng(0)
    boot = [diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(samples)]
    only_mean, only_cls = int((diff > 0).sum()), int((diff < 0).sum())
    p = binomtest(only_mean, only_mean + only_cls).pvalue if only_mean + only_cls else 1.0
    return (f"| {task_dir.name} | {method} | {diff.mean():+.4f} [{np.percentile(boot, 2.5):+.3f}, "
            f"{np.percentile(boot, 97.5):+.3f}] | {only_mean} / {only_cls} | {p:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="a study config (tasks, methods, model, evaluation)")
    parser.add_argument("--out", required=True, help="scratch directory for data, runs and results")
    parser.add_argument("--seed", type=int, help="one seed (default: the config's first)")
    parser.add_argument("--poolings", nargs="+", default=list(POOLINGS), choices=POOLINGS)
    args = parser.parse_args()
    from tunetrace.data.prepare import prepare_task_data

    config = validate_config(yaml.safe_load(Path(args.config).read_text()))
    model, spec = ModelSpec.from_dict(config["model"]), EvalSpec.from_dict(config["evaluation"])
    seed = config["seeds"][0] if args.seed is None else args.seed
    lines = []
    for name, task_config in config["tasks"].items():
        data = Path(args.out) / name / "data"
        if not (data / A.DATA_MANIFEST).exists():
            prepare_task_data(TaskSpec.from_dict(name, task_config), data)
        splits = json.loads((data / A.DATA_MANIFEST).read_text())["splits"]
        rows = (splits["train"]["rows"], splits["eval"]["rows"])
        for pooling in args.poolings:
            task = TaskSpec.from_dict(name, {**task_config, "pooling": pooling})
            for method_name, method_config in config["methods"].items():
                out = Path(args.out) / name / pooling / method_name
                done = out / "bench.json"
                result = json.loads(done.read_text()) if done.exists() else run_one(
                    model, task, MethodSpec.from_dict(method_name, method_config), spec, seed, data, out)
                lines.append(row(name, method_name, rows, result))
                print(lines[-1], flush=True)
    print("\n| task | method | pooling | train / dev rows | steps | dev metric [95% CI] | train s | eval s "
          "| load avg start → end (1/5/15 min) | merge check |\n|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    pairs = [paired(Path(args.out) / name, method) for name in config["tasks"] for method in config["methods"]]
    print("\n| task | method | mean - cls accuracy [paired 95% CI] | right only with mean / only with cls "
          "| McNemar p |\n|---|---|---|---|---|")
    print("\n".join(p for p in pairs if p))


if __name__ == "__main__":
    main()
