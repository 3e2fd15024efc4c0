"""Real data, enough steps: GLUE SST-2 and RTE on their whole training sets, full fine-tuning and LoRA, one seed,
beside the published MiniLM-L6 figures (bench/RESULTS.md, "Real data: GLUE SST-2 and RTE at full size").

Not a CI job: about 80 minutes on an idle 2-core CPU (SST-2: 67,349 rows, one epoch per method; RTE: 2,490 pairs,
five epochs per method). Run it from the checkout, beside ../shared/data:

    python bench/bench_realdata.py --out bench-out/realdata

Each run goes through the library as bench/bench_pooling.py's do (prepare_task_data, train_run, evaluate_run;
LoRA also merge_adapter and verify_merge), with each task's own `pooling`; finished runs (their bench.json) are
reused, so an interrupted benchmark continues. Prints the table with the goals of issue 13.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pooling import paired_difference, run_study  # noqa: E402

HERE = Path(__file__).resolve().parent
CONFIGS = {"sst2": HERE / "realdata_sst2.yaml", "rte": HERE / "realdata_rte.yaml"}
# Dev accuracy of MiniLM-L6 (H384) as published (the MiniLM paper's GLUE dev table; the figures the issue cites).
PUBLISHED = {"sst2": 91.5, "rte": 68.8}
SST2_FULL_GOAL, LORA_GAP_GOAL = 88.5, 2.0


def majority(out: Path, task: str) -> tuple[str, float]:
    """The most frequent training label and its share of the eval split (the trivial baseline)."""
    import pandas as pd

    data = out / task / "data"
    train, dev = pd.read_parquet(data / "train.parquet"), pd.read_parquet(data / "eval.parquet")
    label = train["label"].value_counts().idxmax()
    name = train.loc[train["label"] == label, "label_name"].iloc[0] if "label_name" in train else label
    return str(name), float((dev["label"] == label).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="scratch directory for data and runs")
    parser.add_argument("--tasks", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument(
        "--methods",
        nargs="+",
        help="train only these (e.g. two processes side by side, one "
        "thread each: OMP_NUM_THREADS=1); the table needs both",
    )
    args = parser.parse_args()
    out = Path(args.out)
    lines = [
        "| task | method | head pooling | train / dev rows | steps | dev accuracy [95% CI] | majority baseline "
        "| published MiniLM-L6 | goal | met | train wall (s) | load avg start → end | merge check |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    gaps = [
        "| task | LoRA - full accuracy [paired 95% CI] | right only with LoRA / only with full | McNemar p |",
        "|---|---|---|---|",
    ]
    for task in args.tasks:
        runs = {
            method: (rows, result) for _, method, rows, result in run_study(CONFIGS[task], out, methods=args.methods)
        }
        if args.methods:
            continue
        label, base = majority(out, task)
        full = 100 * runs["full"][1]["value"]
        for method, (rows, r) in runs.items():
            acc, (lo, hi) = 100 * r["value"], (100 * v for v in r["ci"])
            if task == "sst2" and method == "full":
                goal, met = f">= {SST2_FULL_GOAL}", acc >= SST2_FULL_GOAL
            elif task == "sst2":
                goal, met = f"within {LORA_GAP_GOAL:g} points of full", full - acc <= LORA_GAP_GOAL
            else:
                goal, met = f"CI above the majority {100 * base:.1f}", lo > 100 * base
            merge = r.get("merge_check")
            merge_txt = (
                "n/a"
                if merge is None
                else (f"{'pass' if merge['passed'] else 'FAIL'} ({merge['max_abs_logit_diff']:.1e})")
            )
            lines.append(
                f"| {task} | {method} | {r['pooling']} | {rows[0]:,} / {rows[1]:,} | {r['steps']:,} "
                f"| {acc:.2f} [{lo:.1f}, {hi:.1f}] | {100 * base:.1f} ({label}) | {PUBLISHED[task]} "
                f"| {goal} | {'yes' if met else '**no**'} | {r['train_wall_s']:.0f} "
                f"| {r['load_start']} → {r['load_end']} | {merge_txt} |"
            )
        pooling = runs["full"][1]["pooling"]
        files = [out / task / pooling / m / "eval" / "predictions.parquet" for m in ("full", "lora_r8")]
        d = paired_difference(*files)
        gaps.append(
            f"| {task} | {100 * d['diff']:+.2f} [{100 * d['lo']:+.1f}, {100 * d['hi']:+.1f}] "
            f"| {d['only_second']} / {d['only_first']} | {d['p']:.2g} |"
        )
    if args.methods:
        return
    print("\n".join(lines) + "\n\n" + "\n".join(gaps))
    (out / "table.json").write_text(json.dumps({"runs": lines, "gaps": gaps}, indent=1))


if __name__ == "__main__":
    main()
