"""Real-data checks of issue 5: the tables of bench/RESULTS.md ("Task types: real-data checks") from finished studies.

Run each study first (from a directory beside ../shared/data), for example:

    snakemake results/comparison.json --configfile config/examples/glue_rte.yaml --directory RUN/rte

then print the Markdown tables:

    python bench/bench_tasks.py --study rte=RUN/rte --study sst2=RUN/sst2 --study hatecheck=RUN/hatecheck \
        [--squad ../shared/data/squad-v2/dev-v2.0.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pkg"))

PUBLISHED = {"sst2": 0.915, "rte": 0.688}


def study_rows(name: str, root: Path) -> list[str]:
    doc = json.loads((root / "results" / "comparison.json").read_text())
    rows = []
    for task, entry in doc["tasks"].items():
        manifest = json.loads((root / "results" / "data" / task / "manifest.json").read_text())
        for method, m in entry["methods"].items():
            run = json.loads((root / "results" / "runs" / method / task / "seed0" / "run.json").read_text())
            ev = json.loads((root / "results" / "eval" / method / task / "seed0" / "metrics.json").read_text())
            ci = ev.get("ci", {}).get(entry["primary_metric"], [float("nan")] * 2)
            merge = m["merge_check"]
            merge_txt = (
                "n/a"
                if merge is None
                else f"{'pass' if merge['passed'] else 'FAIL'} ({merge['max_abs_logit_diff']:.1e})"
            )
            rows.append(
                f"| {task} | {method} | {manifest['splits']['train']['rows']} | {manifest['splits']['eval']['rows']} "
                f"| {run['global_steps']} "
                f"| {entry['primary_metric']} {m['primary']['mean']:.4f} [{ci[0]:.3f}, {ci[1]:.3f}] "
                f"| {entry['baseline_reference']} {entry['baseline'][entry['baseline_reference']]['primary']:.4f} "
                f"| {PUBLISHED.get(name, float('nan')):.3f} "
                f"| {run['truncated_train_examples']} / {ev.get('truncated_eval_examples', 0)} "
                f"| {m['trainable_parameters']['percent']:.2f}% | {run['train_wall_time_s']:.0f} "
                f"| {merge_txt} |"
            )
    return rows


def group_rows(root: Path) -> list[str]:
    doc = json.loads((root / "results" / "comparison.json").read_text())
    rows = []
    for task, entry in doc["tasks"].items():
        base = json.loads((root / "results" / "baseline" / task / "metrics.json").read_text())
        sources = [("linear probe (baseline)", base["baselines"]["linear_probe"].get("groups"))]
        sources += [(method, m["runs"][0].get("groups")) for method, m in entry["methods"].items()]
        for label, groups in sources:
            if not groups:
                continue
            for group, g in groups["groups"].items():
                rows.append(
                    f"| {label} | {group or '(none)'} | {g['n']} | {g['positives']} | {g['negatives']} "
                    f"| {g['fpr']:.3f} | {g['fnr']:.3f} | {g['accuracy']:.3f} |"
                )
            rows.append(
                f"| {label} | largest gap | | | | {groups['fpr_gap']['gap']:.3f} | {groups['fnr_gap']['gap']:.3f} | |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", action="append", default=[], help="name=DIR of a finished study")
    parser.add_argument("--squad", help="SQuAD v2 dev JSON for the no-answer check")
    args = parser.parse_args()
    print(
        "| task | method | train rows | dev rows | steps | dev metric [95% CI] | baseline | published MiniLM-L6 "
        "| truncated train / dev | trainable | train s | merge check |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    studies = dict(s.split("=", 1) for s in args.study)
    for name, root in studies.items():
        print("\n".join(study_rows(name, Path(root))))
    for name, root in studies.items():
        rows = group_rows(Path(root))
        if rows and name == "hatecheck":
            print(
                "\n| model | target_ident | n | hateful | non-hateful | FPR | FNR | accuracy |\n"
                "|---|---|---|---|---|---|---|---|"
            )
            print("\n".join(rows))
    if args.squad:
        from tunetrace.data.readers import load_squad_json
        from tunetrace.evaluation.squad import squad_v2_scores

        rows = load_squad_json(args.squad)
        scores = squad_v2_scores({r["id"]: r["answers"] for r in rows}, {r["id"]: "" for r in rows})
        print(
            f'\nSQuAD v2 dev, answer "" to all {scores["total"]} questions: '
            f"EM {scores['exact']:.2f}, F1 {scores['f1']:.2f} "
            f"(HasAns F1 {scores['HasAns_f1']:.2f} on {scores['HasAns_total']}, "
            f"NoAns F1 {scores['NoAns_f1']:.2f} on {scores['NoAns_total']})"
        )


if __name__ == "__main__":
    main()
