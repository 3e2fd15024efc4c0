"""Aggregate every run into results/comparison.json and a readable comparison.md."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from tunetrace.analysis.drift import drift_markdown, drift_sections
from tunetrace.config import load_yaml
from tunetrace.fileio import read_json, sha256_file

log = logging.getLogger(__name__)
COMPARISON_SCHEMA = Path(__file__).resolve().parents[1] / "schema" / "comparison.schema.yaml"
SUMMARY_METRICS = ("accuracy", "precision", "recall", "f1", "macro_f1", "loss")
# metrics of the other task types, summarised when their evaluations carry them
EXTRA_METRICS = (
    "perplexity",
    "wasserstein",
    "mae",
    "correlation",
    "exact",
    "squad_f1",
    "unparseable",
    "unparseable_rate",
)


def mean_std(values: Iterable[float]) -> dict[str, float | int]:
    """Mean, sample standard deviation (0 for one value), min, max and count."""
    arr = np.asarray(list(values), dtype=float)
    if arr.size == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
        "min": float(arr.min()),
        "max": float(arr.max()),
        "n": int(arr.size),
    }


def _index(records: Iterable[dict], keys: tuple[str, ...]) -> dict[tuple, dict]:
    return {tuple(r[k] for k in keys): r for r in records}


def _method_summary(
    method: str,
    spec: Mapping[str, Any],
    task: str,
    seeds: list[int],
    evals: dict,
    runs: dict,
    merges: dict,
    baseline: Mapping[str, Any],
) -> dict[str, Any]:
    ev = [evals[(method, task, s)] for s in seeds]
    rn = [runs[(method, task, s)] for s in seeds]
    metrics = {
        key: mean_std(e[key] for e in ev if e.get(key) is not None)
        for key in SUMMARY_METRICS + tuple(k for k in EXTRA_METRICS if any(k in e for e in ev))
    }
    primary = mean_std(e["primary"] for e in ev)
    summary: dict[str, Any] = {
        "type": spec["type"],
        "seeds": seeds,
        "metrics": metrics,
        "primary": primary,
        "delta_vs_baseline": {
            "reference": baseline["reference"],
            "baseline": baseline["primary"],
            "absolute": primary["mean"] - baseline["primary"],
            "beats_baseline": all(
                (e["primary"] - baseline["primary"]) * (1 if baseline["higher_is_better"] else -1) > 0 for e in ev
            ),
        },
        "trainable_parameters": {
            "count": rn[0]["parameters"]["trainable"],
            "total": rn[0]["parameters"]["total"],
            "percent": rn[0]["parameters"]["percent"],
        },
        "train_wall_time_s": mean_std(r["train_wall_time_s"] for r in rn),
        "train_samples_per_second": mean_std(r["train_samples_per_second"] for r in rn),
        "peak_memory_mb": mean_std(max(r["memory"].values()) for r in rn),
        "runs": [
            {
                "seed": s,
                "primary": e["primary"],
                "ci": e.get("ci", {}),
                "accuracy": e.get("accuracy"),
                "f1": e.get("f1"),
                "groups": e.get("groups"),
                "strata": e.get("strata"),
                "final_train_loss": r["final_train_loss"],
                "global_steps": r["global_steps"],
            }
            for s, e, r in zip(seeds, ev, rn, strict=True)
        ],
        "merge_check": None,
    }
    if spec["type"] == "lora":
        checks = [merges[(method, task, s)] for s in seeds]
        summary["merge_check"] = merge_summary(checks)
    return summary


def merge_summary(checks: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Over a method's seeds: passed when every seed passed; each quantity at its worst seed."""
    quantities: dict[str, Any] = {}
    for check in checks:
        for name, q in check["quantities"].items():
            worst = quantities.setdefault(name, dict(q))
            values = [v for v in (worst["value"], q["value"]) if v is not None]
            if values:
                worst["value"] = max(values) if q["bound"] == "max" else min(values)
            worst["passed"] = worst["passed"] and q["passed"]
    return {"passed": all(c["passed"] for c in checks), "quantities": quantities}


def build_comparison(
    config: Mapping[str, Any],
    baselines: list[str],
    evals: list[str],
    runs: list[str],
    merge_checks: list[str],
    manifests: list[str],
) -> dict[str, Any]:
    """The comparison document: per task and method, seed statistics against the baseline."""
    loaded = {
        name: [(p, read_json(p)) for p in paths]
        for name, paths in (
            ("baselines", baselines),
            ("evals", evals),
            ("runs", runs),
            ("merges", merge_checks),
            ("manifests", manifests),
        )
    }
    base_by_task = {d["task"]: d for _, d in loaded["baselines"]}
    ev = _index((d for _, d in loaded["evals"]), ("method", "task", "seed"))
    rn = _index((d for _, d in loaded["runs"]), ("method", "task", "seed"))
    mg = _index((d for _, d in loaded["merges"]), ("method", "task", "seed"))
    seeds = list(config["seeds"])
    tasks: dict[str, Any] = {}
    for task in config["tasks"]:
        baseline = base_by_task[task]
        tasks[task] = {
            "primary_metric": baseline["primary_metric"],
            "baseline": {
                name: {
                    "primary": b["primary"],
                    "accuracy": b.get("accuracy"),
                    "f1": b.get("f1"),
                    "ci": b.get("ci", {}),
                    **{k: b[k] for k in EXTRA_METRICS if k in b},
                    "groups": b.get("groups"),
                    "strata": b.get("strata"),
                }
                for name, b in baseline["baselines"].items()
            },
            "baseline_reference": baseline["reference"],
            "methods": {
                m: _method_summary(m, spec, task, seeds, ev, rn, mg, baseline) for m, spec in config["methods"].items()
            },
        }
    inputs = [
        {"kind": kind, "path": str(p), "sha256": sha256_file(p)} for kind, items in loaded.items() for p, _ in items
    ]
    return {
        "schema_version": 1,
        "generated_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": config["model"]["name_or_path"],
        "seeds": seeds,
        "tasks": tasks,
        "inputs": inputs,
    }


def add_validation(document: dict[str, Any], validation_paths: list[str]) -> None:
    """The red-flag section: counts, every flag with its run and files; the reports join `inputs`."""
    from tunetrace.guard.validation import summarise

    document["validation"] = summarise(validation_paths)
    document["inputs"] += [{"kind": "validations", "path": str(p), "sha256": sha256_file(p)} for p in validation_paths]


def validate_comparison(document: Mapping[str, Any], schema_path: str | os.PathLike = COMPARISON_SCHEMA) -> None:
    """Raise jsonschema.ValidationError (with the failing path) when the document is malformed."""
    jsonschema.validate(document, load_yaml(schema_path), cls=jsonschema.Draft202012Validator)


def _fmt(stat: Mapping[str, Any], digits: int = 4) -> str:
    if stat.get("mean") is None:
        return "n/a"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}" if stat["n"] > 1 else f"{stat['mean']:.{digits}f}"


def render_markdown(doc: Mapping[str, Any]) -> str:
    """comparison.md: one table per task (each run's red-flag verdict in its row), then group error rates."""
    lines = [
        "# tunetrace comparison",
        "",
        f"Model: `{doc['model']}` · seeds: {doc['seeds']} · generated {doc['generated_at']}",
        "",
    ]
    for task, entry in doc["tasks"].items():
        metric = entry["primary_metric"]
        lines += [f"## {task}", "", "Baselines (pretrained model, before fine-tuning):", ""]
        for name, b in entry["baseline"].items():
            lines.append(f"- {name}: {metric} {b['primary']:.4f}")
        lines += ["", *_results_table(doc, task, entry)]
        lines += _extra_lines(entry)
        lines += _group_lines(entry)
        lines += curve_markdown(entry.get("curve_plots", []))
        lines += drift_markdown(entry.get("drift"))
    lines += _validation_lines(doc)
    lines += _study_flag_lines(doc)
    lines += [
        "",
        "Every number above is traceable to the input files listed in `comparison.json` (`inputs`, with sha256).",
        "",
    ]
    return "\n".join(lines)


def _results_table(doc: Mapping[str, Any], task: str, entry: Mapping[str, Any]) -> list[str]:
    """One row per method; F1 beside the primary metric unless it is the primary metric; with red flags, a
    verdict column, so a flagged run is marked where its numbers are read."""
    metric, flagged = entry["primary_metric"], "validation" in doc
    f1 = metric != "f1"
    titles = [
        "method",
        "type",
        f"{metric} (mean ± sd)",
        "Δ vs baseline",
        *(["F1"] if f1 else []),
        "trainable params",
        "train time (s)",
        "samples/s",
        "peak mem (MB)",
        "merge check",
        *(["red flags"] if flagged else []),
    ]
    lines = ["| " + " | ".join(titles) + " |", "|" + "---|" * len(titles)]
    for name, m in entry["methods"].items():
        merge = m["merge_check"]
        cells = [
            name,
            m["type"],
            _fmt(m["primary"]),
            f"{m['delta_vs_baseline']['absolute']:+.4f}",
            *([_fmt(m["metrics"]["f1"])] if f1 else []),
            f"{m['trainable_parameters']['count']:,} ({m['trainable_parameters']['percent']:.2f}%)",
            _fmt(m["train_wall_time_s"], 1),
            _fmt(m["train_samples_per_second"], 1),
            _fmt(m["peak_memory_mb"], 0),
            "n/a" if merge is None else merge_text(merge),
            *([verdict_text(doc["validation"], name, task)] if flagged else []),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def verdict_text(section: Mapping[str, Any], method: str, task: str) -> str:
    """'**FAIL** seed 0: loss_at_chance, not_better_than_trivial' (critical codes per seed), else 'pass', with the
    warning count; 'not validated' when no report covers the method."""
    runs = [r for r in section["runs"] if r["method"] == method and r["task"] == task]
    if not runs:
        return "not validated"
    flags = [f for f in section["flags"] if f["method"] == method and f["task"] == task]
    critical = {
        r["seed"]: sorted({f["code"] for f in flags if f["seed"] == r["seed"] and f["severity"] == "critical"})
        for r in runs
    }
    warnings = sum(f["severity"] == "warning" for f in flags)
    notes = f" ({warnings} warning{'s' if warnings != 1 else ''})" if warnings else ""
    failed = "; ".join(f"seed {seed}: {', '.join(codes)}" for seed, codes in critical.items() if codes)
    return f"**FAIL** {failed}{notes}" if failed else f"pass{notes}"


def merge_text(merge: Mapping[str, Any]) -> str:
    """'pass (max_abs_logit_diff 1.2e-06 <= 1e-04)': the verdict and each checked quantity against its tolerance."""
    checked = [
        f"{name} {q['value']:.1e} {'<=' if q['bound'] == 'max' else '>='} {q['tolerance']:.0e}"
        for name, q in merge["quantities"].items()
        if q["checked"] and q["value"] is not None
    ]
    return f"{'pass' if merge['passed'] else 'FAIL'} ({'; '.join(checked)})"


def _extra_lines(entry: Mapping[str, Any]) -> list[str]:
    """Task-type metrics (perplexity, distribution distances, SQuAD EM, unparseable outputs) and strata."""
    rows = []
    for name, b in entry["baseline"].items():
        extra = {k: b[k] for k in EXTRA_METRICS if b.get(k) is not None}
        if extra:
            rows.append(f"| baseline {name} | " + ", ".join(f"{k} {v:.4f}" for k, v in extra.items()) + " |")
    for name, m in entry["methods"].items():
        extra = {k: m["metrics"][k] for k in EXTRA_METRICS if k in m["metrics"]}
        if extra:
            rows.append(f"| {name} | " + ", ".join(f"{k} {_fmt(v)}" for k, v in extra.items()) + " |")
        for run in m["runs"]:
            for stratum, s in (run.get("strata") or {}).items():
                rows.append(
                    f"| {name} seed {run['seed']} stratum {stratum!r} | "
                    + ", ".join(f"{k} {v:.4f}" for k, v in s.items() if isinstance(v, float))
                    + " |"
                )
    if not rows:
        return []
    return ["", "Task metrics:", "", "| what | metrics |", "|---|---|", *rows]


def _group_columns(entry: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """(column title, group document) of every baseline and every run that has per-group rates."""
    columns = [(f"baseline {name}", b["groups"]) for name, b in entry["baseline"].items() if b.get("groups")]
    columns += [
        (f"{name} seed {run['seed']}", run["groups"])
        for name, m in entry["methods"].items()
        for run in m["runs"]
        if run.get("groups")
    ]
    return columns


def _rate_pair(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return "-"
    return " / ".join("n/a" if row[k] is None else f"{row[k]:.3f}" for k in ("fpr", "fnr"))


def _gap_text(gap: Mapping[str, Any]) -> str:
    return "n/a" if gap["gap"] is None else f"{gap['gap']:.3f} ({gap['max_group']} vs {gap['min_group']})"


def _group_reasons(title: str, groups: Mapping[str, Any]) -> list[str]:
    """Why each n/a of one column is n/a: per reason, the rates it covers."""
    reasons: dict[str, list[str]] = {}
    for group, row in groups["groups"].items():
        for rate in ("fpr", "fnr"):
            if row.get(f"{rate}_reason"):
                reasons.setdefault(row[f"{rate}_reason"], []).append(f"{group} {rate.upper()}")
    every = 2 * len(groups["groups"])
    lines = [
        f"- {title}, {'every rate' if len(where) == every else ', '.join(where)}: {reason}"
        for reason, where in reasons.items()
    ]
    lines += [
        f"- {title}, largest {rate.upper()} gap: {groups[f'{rate}_gap']['reason']}"
        for rate in ("fpr", "fnr")
        if groups[f"{rate}_gap"].get("reason") and not groups.get("degenerate")
    ]
    return lines


def _group_lines(entry: Mapping[str, Any]) -> list[str]:
    """Per-group FPR / FNR of the baselines beside every run's, the group sizes, the largest gaps and why
    a rate is n/a (undefined, too few examples of a class, or a constant predictor)."""
    columns = _group_columns(entry)
    if not columns:
        return []
    sizes: dict[str, Mapping[str, Any]] = {}
    for _, groups in columns:
        for group, row in groups["groups"].items():
            sizes.setdefault(group, row)  # every column scores the same eval split
    lines = [
        "",
        "Per-group error rates (eval split), FPR / FNR; n/a where a rate is undefined or degenerate "
        "(reasons below), and the largest gaps over the defined rates:",
        "",
        "| group | n (pos / neg) | " + " | ".join(title for title, _ in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for group, row in sizes.items():
        lines.append(
            f"| {group} | {row['n']} ({row['positives']} / {row['negatives']}) | "
            + " | ".join(_rate_pair(groups["groups"].get(group)) for _, groups in columns)
            + " |"
        )
    for rate in ("fpr", "fnr"):
        lines.append(
            f"| largest {rate.upper()} gap | | "
            + " | ".join(_gap_text(groups[f"{rate}_gap"]) for _, groups in columns)
            + " |"
        )
    reasons = [line for title, groups in columns for line in _group_reasons(title, groups)]
    return lines + (["", *reasons] if reasons else [])


def add_drift_sections(
    document: dict[str, Any], config: Mapping[str, Any], tables: list[str], weights: list[str], plots: list[str]
) -> None:
    """Add each task's `drift` section (representation drift, weight space) and list the inputs."""
    method_types = {m: spec["type"] for m, spec in config["methods"].items()}
    for task, section in drift_sections(tables, weights, plots, method_types).items():
        document["tasks"][task]["drift"] = section
    document["inputs"] += [
        {"kind": kind, "path": str(p), "sha256": sha256_file(p)}
        for kind, paths in (("drift", tables), ("weights", weights))
        for p in paths
    ]


def add_curve_plots(document: dict[str, Any], plots: list[str]) -> None:
    """List each task's training-curve plot ({task}_loss_curves.png) in its entry, as `curve_plots`."""
    for task, entry in document["tasks"].items():
        entry["curve_plots"] = sorted(str(p) for p in plots if Path(p).name == f"{task}_loss_curves.png")


def curve_markdown(plots: list[str]) -> list[str]:
    """The task's training-curve plots, embedded relative to results/ (where comparison.md lies)."""
    if not plots:
        return []
    return [
        "",
        "Training curves (train loss solid, eval loss dashed; runs with critical red flags marked in red):",
        "",
        *(f"![train and eval loss over steps]({str(p).removeprefix('results/')})" for p in plots),
    ]


def _validation_lines(doc: Mapping[str, Any]) -> list[str]:
    section = doc.get("validation")
    if not section:
        return []
    lines = [
        "",
        "## Red flags",
        "",
        f"{section['critical']} critical, {section['warning']} warning (details and files in results/validation/).",
        "",
    ]
    if section["flags"]:
        lines += ["| method | task | seed | severity | flag | message |", "|---|---|---|---|---|---|"]
        lines += [
            f"| {f['method']} | {f['task']} | {f['seed']} | {f['severity']} | {f['code']} | {f['message']} |"
            for f in section["flags"]
        ]
    return lines


def _study_flag_lines(doc: Mapping[str, Any]) -> list[str]:
    section = doc.get("study_flags")
    if not section:
        return []
    lines = [
        "",
        "## Study-level flags",
        "",
        f"Across seeds (validation.max_seed_spread {section['max_seed_spread']}): {len(section['flags'])} flag(s).",
        "",
    ]
    if section["flags"]:
        lines += ["| method | task | severity | flag | message |", "|---|---|---|---|---|"]
        lines += [
            f"| {f['method']} | {f['task']} | {f['severity']} | {f['code']} | {f['message']} |"
            for f in section["flags"]
        ]
    return lines
