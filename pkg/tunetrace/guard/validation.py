"""Red flags of a finished run: what would make a careful person distrust its numbers.

Critical flags mean the run's results must not be used; warnings mean look before you trust.
Each flag names the files behind it. Trend and oscillation checks are pure functions on arrays.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tunetrace import artifacts as A
from tunetrace.analysis.steps import step_dir_name
from tunetrace.artifacts import CHECKSUMS
from tunetrace.config import StudyStopped, ValidationSpec
from tunetrace.fileio import read_json, sha256_file

log = logging.getLogger(__name__)
CRITICAL, WARNING = "critical", "warning"


class ValidationFailed(StudyStopped):
    """validation.strict is on and at least one run has a critical red flag (a StudyStopped: the message
    lists every critical flag, its run and files, and the fix)."""


def flag(severity: str, code: str, message: str, files: Iterable[str | os.PathLike] = ()) -> dict[str, Any]:
    return {"severity": severity, "code": code, "message": message, "files": [str(f) for f in files]}


def apply_severity(flags: Sequence[dict[str, Any]], spec: ValidationSpec) -> list[dict[str, Any]]:
    """Each flag at the severity the config gives its code (validation.warning_codes, critical_codes),
    else at its default; a code in both lists stays critical."""

    def severity(item: Mapping[str, Any]) -> str:
        if item["code"] in spec.critical_codes:
            return CRITICAL
        return WARNING if item["code"] in spec.warning_codes else item["severity"]

    return [{**item, "severity": severity(item)} for item in flags]


# ---------------------------------------------------------------- pure functions


def running_median(values: Sequence[float], window: int) -> np.ndarray:
    """Centred running median (the window shrinks at the ends), robust to single spikes."""
    arr, half = np.asarray(values, dtype=float), max(window, 1) // 2
    return np.array([np.median(arr[max(0, i - half) : i + half + 1]) for i in range(arr.size)])


def theil_sen_slope(x: Sequence[float], y: Sequence[float]) -> float:
    """Median of the pairwise slopes: a trend that a few outliers cannot move."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    i, j = np.triu_indices(x.size, k=1)
    dx = x[j] - x[i]
    keep = dx != 0
    return float(np.median((y[j] - y[i])[keep] / dx[keep])) if keep.any() else 0.0


def relative_trend(x: Sequence[float], y: Sequence[float]) -> float:
    """Change of the Theil-Sen trend over the whole x range, as a share of the median |y|."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    scale = float(np.median(np.abs(y)))
    if x.size < 2 or scale == 0:
        return 0.0
    return theil_sen_slope(x, y) * float(x[-1] - x[0]) / scale


def oscillation(values: Sequence[float], window: int) -> tuple[float, float]:
    """(swing, sign-change share): RMS distance from the running mean over the median, and how
    often the residual flips sign. Minibatch noise is small; a loss bouncing between regimes is not."""
    arr, half = np.asarray(values, dtype=float), max(window, 1) // 2
    resid = arr - np.array([np.mean(arr[max(0, i - half) : i + half + 1]) for i in range(arr.size)])
    scale = float(np.median(np.abs(arr))) or 1.0
    signs = np.sign(resid[resid != 0])
    flips = float(np.mean(signs[1:] != signs[:-1])) if signs.size > 1 else 0.0
    return float(np.sqrt(np.mean(resid**2))) / scale, flips


# ---------------------------------------------------------------- training log


def read_train_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Records of train_log.jsonl (NaN and Infinity are kept as floats)."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _series(records: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [(r["step"], float(r[key])) for r in records if r.get(key) is not None and "train_runtime" not in r]
    return np.array([s for s, _ in rows], dtype=float), np.array([v for _, v in rows], dtype=float)


def check_loss(
    records: Sequence[Mapping[str, Any]], spec: ValidationSpec, num_labels: int | None, log_path: str
) -> list[dict]:
    """NaN/inf loss, rising loss trend, high final loss, oscillation.

    The final-loss limit is `max_final_train_loss`, else 1.5 x ln(num_labels) for a classifier;
    with neither (language-model losses have no chance level to compare with) it is not checked."""
    steps, loss = _series(records, "loss")
    if loss.size == 0:
        return [flag(CRITICAL, "no_loss_logged", "no train loss was logged", [log_path])]
    bad = ~np.isfinite(loss)
    if bad.any():
        return [
            flag(
                CRITICAL,
                "nonfinite_loss",
                f"train loss is {loss[bad][0]} from step {int(steps[bad][0])} "
                f"({int(bad.sum())} of {loss.size} log points)",
                [log_path],
            )
        ]
    flags = []
    limit = spec.max_final_train_loss or (1.5 * math.log(max(num_labels, 2)) if num_labels is not None else None)
    if limit is not None and loss[-1] > limit:
        flags.append(
            flag(
                CRITICAL,
                "final_loss_high",
                f"last train loss {loss[-1]:.4f} > {limit:.4f} (validation.max_final_train_loss)",
                [log_path],
            )
        )
    if loss.size >= spec.min_log_points:
        trend = relative_trend(steps, running_median(loss, spec.smoothing_window))
        if trend > spec.loss_increase_tolerance:
            flags.append(
                flag(
                    CRITICAL,
                    "loss_increasing",
                    f"smoothed train loss trend rises by {trend:.1%} of its "
                    f"median over the run (> {spec.loss_increase_tolerance:.1%})",
                    [log_path],
                )
            )
        swing, flips = oscillation(loss, spec.smoothing_window)
        if swing > spec.oscillation_ratio and flips >= 0.5:
            flags.append(
                flag(
                    WARNING,
                    "loss_oscillating",
                    f"train loss swings {swing:.1%} of its median around its "
                    f"smoothed curve, changing direction at {flips:.0%} of log points",
                    [log_path],
                )
            )
    return flags


def check_grad_norm(records: Sequence[Mapping[str, Any]], spec: ValidationSpec, log_path: str) -> list[dict]:
    """Non-finite or exploding total gradient norm."""
    steps, norms = _series(records, "grad_norm")
    if norms.size == 0:
        return []
    bad = ~np.isfinite(norms)
    if bad.any():
        return [
            flag(
                CRITICAL,
                "nonfinite_grad_norm",
                f"gradient norm is {norms[bad][0]} at step {int(steps[bad][0])}",
                [log_path],
            )
        ]
    if norms.max() > spec.max_grad_norm:
        at = int(steps[int(norms.argmax())])
        return [
            flag(
                CRITICAL,
                "grad_norm_high",
                f"gradient norm {norms.max():.4g} at step {at} > {spec.max_grad_norm:g} (validation.max_grad_norm)",
                [log_path],
            )
        ]
    return []


def check_resources(records: Sequence[Mapping[str, Any]], spec: ValidationSpec, log_path: str) -> list[dict]:
    """Warnings when step time or memory trend upwards over the run (the first log point is warm-up)."""
    flags = []
    memory_keys = sorted({k for r in records for k in r if k == "cpu_rss_mb" or k.endswith("_allocated_mb")})
    for key, limit in [("step_time_s", spec.step_time_increase), *((k, spec.memory_increase) for k in memory_keys)]:
        steps, values = _series(records, key)
        steps, values = steps[1:], values[1:]
        if values.size < spec.min_log_points or not np.isfinite(values).all():
            continue
        trend = relative_trend(steps, values)
        if trend > limit:
            flags.append(
                flag(
                    WARNING,
                    f"{key}_trend_up",
                    f"{key} trends up by {trend:.1%} over the run (> {limit:.0%})",
                    [log_path],
                )
            )
    return flags


FIX_STEPS = (
    "usually fixed by more optimiser steps (methods.<m>.epochs or max_steps) or a larger "
    "learning rate (methods.<m>.learning_rate)"
)
FIX_DIVERGED = (
    "usually fixed by a smaller learning rate (methods.<m>.learning_rate) or gradient clipping "
    "(methods.<m>.max_grad_norm)"
)
# A final loss at this multiple of the first logged one or more: the run diverged (it did not merely stall), and
# the fix is the opposite of a stalled run's.
DIVERGED_RATIO = 2.0


def check_loss_moved(
    records: Sequence[Mapping[str, Any]], spec: ValidationSpec, num_labels: int | None, run: str, log_path: str
) -> list[dict]:
    """A train loss that rose to DIVERGED_RATIO x its first logged value or more (diverged), or barely moved
    from it, or that ends no lower than chance (ln(number of labels), a uniform guess) for a classifier. The
    final loss is the running median of the last log points, so one lucky or unlucky batch does not decide.
    One log point is enough for the chance level (a run that logged once still has a final loss); the
    movement checks need two."""
    steps, loss = _series(records, "loss")
    if loss.size == 0 or not np.isfinite(loss).all():
        return []  # nothing logged (no_loss_logged), or non-finite (nonfinite_loss says so)
    final, flags = float(running_median(loss, spec.smoothing_window)[-1]), []
    if loss.size == 1:
        seen = f"train loss {final:.4f} at step {int(steps[0])} (the only log point)"
        return _loss_at_chance(final, seen, num_labels, False, run, log_path)
    seen = f"train loss {loss[0]:.4f} at step {int(steps[0])} -> {final:.4f} at step {int(steps[-1])} (running median)"
    diverged = loss[0] > 0 and final >= DIVERGED_RATIO * loss[0]
    if diverged:
        flags.append(
            flag(
                CRITICAL,
                "loss_diverged",
                f"{run}: {seen}, {final / loss[0]:.3g} x the start: the run diverged; {FIX_DIVERGED}",
                [log_path],
            )
        )
    elif loss[0] > 0 and final >= spec.loss_stall_ratio * loss[0]:
        flags.append(
            flag(
                CRITICAL,
                "loss_barely_moved",
                f"{run}: {seen}, {final / loss[0]:.0%} of the start "
                f"(>= validation.loss_stall_ratio {spec.loss_stall_ratio:.0%}): the run barely trained; "
                f"{FIX_STEPS}",
                [log_path],
            )
        )
    return flags + _loss_at_chance(final, seen, num_labels, diverged, run, log_path)


def _loss_at_chance(
    final: float, seen: str, num_labels: int | None, diverged: bool, run: str, log_path: str
) -> list[dict]:
    """loss_at_chance when a classifier's final train loss is not below ln(number of labels)."""
    chance = math.log(num_labels) if num_labels and num_labels > 1 else None
    if chance is None or final < chance:
        return []
    fix = FIX_DIVERGED if diverged else f"{FIX_STEPS}, or a head and pooling that suit the model"
    return [
        flag(
            CRITICAL,
            "loss_at_chance",
            f"{run}: {seen} is not below chance level ln({num_labels}) = "
            f"{chance:.4f} (a uniform guess over the labels): the classifier learned nothing; {fix}",
            [log_path],
        )
    ]


def warmup_steps(warmup: float, planned_steps: int) -> int:
    """Optimiser steps of the linear warmup as the Trainer counts them: a value below 1 is a share of the
    planned steps (rounded up), else a step count."""
    return int(warmup) if warmup >= 1 else math.ceil(planned_steps * warmup)


def check_warmup(
    run_meta: Mapping[str, Any],
    method: Any,
    records: Sequence[Mapping[str, Any]],
    run: str,
    meta_path: str,
    log_path: str,
) -> list[dict]:
    """lr_never_warmed_up: the run stopped (max_steps, early stopping, a short epoch) at or before the last
    warmup step, so no step ran at the configured learning rate; the train log's last learning rate is
    the evidence quoted."""
    steps, planned = run_meta.get("global_steps"), run_meta.get("planned_steps")
    if steps is None or not planned or not method.warmup_ratio or method.scheduler == "constant":
        return []  # a run.json without the counts, no warmup, or a schedule that ignores it
    warm = warmup_steps(method.warmup_ratio, int(planned))
    if steps > warm:
        return []
    logged = _series(records, "learning_rate")
    last = (
        f"; the last logged learning rate is {logged[1][-1]:.3g} at step {int(logged[0][-1])}" if logged[1].size else ""
    )
    return [
        flag(
            CRITICAL,
            "lr_never_warmed_up",
            f"{run}: training ended at step {steps}, inside the "
            f"{warm}-step warmup (methods.<m>.warmup_ratio {method.warmup_ratio:g} of {planned} planned steps), "
            f"so no step ran at the learning rate {method.learning_rate:g}{last}; usually fixed by more "
            "optimiser steps (methods.<m>.epochs or max_steps) or a smaller warmup_ratio",
            [meta_path, log_path],
        )
    ]


# ---------------------------------------------------------------- metrics


def check_metric(
    metrics: Mapping[str, Any],
    expected_range: Mapping[str, Any] | None,
    metrics_path: str,
    higher_is_better: bool = True,
) -> list[dict]:
    """The primary metric outside the expected range, in its direction: on the worse side critical, on the
    better side a warning (suspiciously good). The codes name the side (below / above)."""
    if not expected_range:
        return []
    value, name = metrics["primary"], metrics.get("primary_metric", "primary metric")
    low, high = expected_range.get("min"), expected_range.get("max")  # tasks.<task>.expected_range
    below, above = low is not None and value < low, high is not None and value > high
    if not (below or above):
        return []
    severity = CRITICAL if (below if higher_is_better else above) else WARNING
    where = (
        f"{name} {value:.4f} is {'below' if below else 'above'} the expected range [{low}, {high}] "
        f"(tasks.<task>.expected_range; {name} {'higher' if higher_is_better else 'lower'} is better): "
        + ("worse than expected" if severity == CRITICAL else "suspiciously good (leakage? wrong split?)")
    )
    if below:
        return [flag(severity, "metric_below_range", where, [metrics_path])]
    return [flag(severity, "metric_above_range", where, [metrics_path])]


def _measured(metrics: Mapping[str, Any], metric: str, stratum: str | None) -> float | None:
    """A metric of the whole eval split or of one stratum: `strata` (causal_lm, distribution) or the per-group
    rows of `groups` (label-predicting types); None when the evaluation did not report it."""
    if stratum is None:
        value = metrics.get(metric)
    else:
        row = (
            (metrics.get("strata") or {}).get(stratum)
            or ((metrics.get("groups") or {}).get("groups") or {}).get(stratum)
            or {}
        )
        value = row.get(metric)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def check_criteria(
    metrics: Mapping[str, Any],
    criteria: Sequence[Mapping[str, Any]],
    task_type: str,
    task: str,
    run: str,
    metrics_path: str,
) -> list[dict]:
    """Every criterion of tasks.<task>.criteria in its metric's direction (tunetrace.registry): a value on
    the worse side of its requirement is criterion_not_met at the criterion's severity, one beyond the bound on
    the better side criterion_suspiciously_good (a warning), one the evaluation did not report
    criterion_unmeasured (critical)."""
    from tunetrace.registry import higher_is_better

    flags = []
    for i, item in enumerate(criteria):
        metric, stratum, low, high = item["metric"], item.get("stratum"), item.get("min"), item.get("max")
        key, where = f"tasks.{task}.criteria[{i}]", f"{metric}" + (f" in stratum {stratum!r}" if stratum else "")
        value = _measured(metrics, metric, stratum)
        if value is None or not math.isfinite(value):
            flags.append(
                flag(
                    CRITICAL,
                    "criterion_unmeasured",
                    f"{run}: {key} bounds {where}, which the evaluation "
                    "did not report (or reported as NaN); check the metric name and the stratum (a value "
                    "of the task's group_field in the eval split)",
                    [metrics_path],
                )
            )
            continue
        higher = higher_is_better(task_type, metric)
        need, ceiling = (low, high) if higher else (high, low)
        worse = need is not None and (value < need if higher else value > need)
        better = ceiling is not None and (value > ceiling if higher else value < ceiling)
        sign = ">=" if higher else "<="
        severity = item.get("severity") or CRITICAL
        if worse:
            flags.append(
                flag(
                    severity,
                    "criterion_not_met",
                    f"{run}: {where} {value:.4f} fails {key}: {metric} {sign} {need:g} required "
                    f"({metric}: {'higher' if higher else 'lower'} is better)",
                    [metrics_path],
                )
            )
        elif better:
            flags.append(
                flag(
                    WARNING,
                    "criterion_suspiciously_good",
                    f"{run}: {where} {value:.4f} is better than {key}'s plausible limit {ceiling:g}: "
                    "suspiciously good (leakage? wrong split?)",
                    [metrics_path],
                )
            )
    return flags


def check_overfit(
    metrics: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    spec: ValidationSpec,
    metrics_path: str,
    log_path: str,
) -> list[dict]:
    """Eval loss far above the last train loss."""
    _, loss = _series(records, "loss")
    eval_loss = metrics.get("loss")
    if loss.size == 0 or eval_loss is None or not np.isfinite(loss[-1]) or loss[-1] <= 0:
        return []
    if eval_loss > spec.overfit_ratio * loss[-1]:
        return [
            flag(
                WARNING,
                "overfitting",
                f"eval loss {eval_loss:.4f} > {spec.overfit_ratio:g} x last train loss {loss[-1]:.4f}",
                [metrics_path, log_path],
            )
        ]
    return []


def _beats(value: float, reference: float, higher_is_better: bool, margin: float = 0.0) -> bool:
    return (value - reference) * (1 if higher_is_better else -1) > margin


def trivial_evidence(metrics: Mapping[str, Any], higher: bool, spec: ValidationSpec) -> tuple[float, str]:
    """The value compared with the trivial baseline and what it is: the worse end of the primary metric's
    confidence interval, or the point estimate with the reason no interval is used."""
    value, name = metrics["primary"], metrics.get("primary_metric", "primary metric")
    interval, n = (metrics.get("ci") or {}).get(name), metrics.get("n")
    level = f"{metrics.get('confidence', 0.95):.0%}"
    if interval and n is not None and n >= spec.min_interval_examples:
        low, high = interval
        return (low if higher else high), (
            f"{name} {value:.4f}, {level} CI [{low:.4f}, {high:.4f}] over {n} eval "
            f"examples: its {'lower' if higher else 'upper'} bound "
            f"{low if higher else high:.4f}"
        )
    if not interval:
        why = "no confidence interval was computed (evaluation.bootstrap_samples 0, or none for this metric)"
    elif n is None:
        why = "the evaluation does not say how many examples the interval rests on"
    else:
        why = (
            f"only {n} eval examples (< validation.min_interval_examples {spec.min_interval_examples}), too few "
            "for a bootstrap interval"
        )
    return value, f"{name} {value:.4f} (point estimate: {why})"


def check_baselines(
    metrics: Mapping[str, Any],
    baseline: Mapping[str, Any],
    trivial: str | None,
    spec: ValidationSpec,
    run: str,
    paths: Sequence[str],
    weights_key: str | None = None,
) -> list[dict]:
    """The primary metric against the task's baselines (direction from the baseline document): not beating
    the trivial one (no model at all) with its confidence interval is critical (trivial_evidence: the point
    estimate on a tiny eval split), falling below a learned one (a linear probe, the base model) is a
    warning with the margin. `weights_key` (tasks.<task>.class_weights, for a type whose loss is over the
    labels) joins the advice: a classifier stuck at the majority baseline is the case class weights fix."""
    value, name = metrics["primary"], metrics.get("primary_metric", "primary metric")
    higher, flags = baseline["higher_is_better"], []
    fix = f"{FIX_STEPS}, or {weights_key}: balanced when the labels are imbalanced" if weights_key else FIX_STEPS
    for base, scores in baseline["baselines"].items():
        ref = scores.get("primary")
        if ref is None or value is None:
            continue
        evidence, seen = trivial_evidence(metrics, higher, spec) if base == trivial else (value, "")
        if base == trivial and not _beats(evidence, ref, higher, spec.min_gain_over_trivial):
            flags.append(
                flag(
                    CRITICAL,
                    "not_better_than_trivial",
                    f"{run}: {seen} does not beat the "
                    f"trivial baseline '{base}' {ref:.4f} by more than validation.min_gain_over_trivial "
                    f"{spec.min_gain_over_trivial:g}: not shown better than predicting without a model; "
                    f"{fix}",
                    paths,
                )
            )
        elif base != trivial and _beats(ref, value, higher):
            flags.append(
                flag(
                    WARNING,
                    "below_baseline",
                    f"{run}: {name} {value:.4f} is {abs(value - ref):.4f} "
                    f"{'below' if higher else 'above'} the '{base}' baseline {ref:.4f}: fine-tuning did "
                    f"worse than {base}; {FIX_STEPS}, or a head and pooling that suit the model",
                    paths,
                )
            )
    return flags


def check_predictions(task_type: Any, task: Any, spec: ValidationSpec, run: str, predictions_path: str) -> list[dict]:
    """The task type's own collapse signs in the eval predictions (critical by default)."""
    import pandas as pd

    found = task_type.prediction_flags(pd.read_parquet(predictions_path), task, spec)
    return [flag(CRITICAL, f["code"], f"{run}: {f['message']}", [predictions_path]) for f in found]


def check_sizing(run_meta: Mapping[str, Any], spec: ValidationSpec, run: str, meta_path: str) -> list[dict]:
    """The run's planned size (run.json `sizing`) against the rule of thumb (a warning)."""
    from tunetrace.training.sizing import SizingSpec, too_few_steps

    facts = run_meta.get("sizing")
    if not facts:
        return []  # a run.json from before sizing was recorded
    sizing = SizingSpec(
        min_steps=spec.min_steps, min_steps_per_label=spec.min_steps_per_label, min_epochs=spec.min_epochs
    )
    problem = too_few_steps(facts, sizing)
    return [flag(WARNING, "too_few_steps", f"{run}: {problem}", [meta_path])] if problem else []


def unenforced_gate_flags(gate_paths: Sequence[str]) -> list[dict]:
    """A NO-GO gate that was not enforced (the run trained anyway)."""
    flags = []
    for path in gate_paths:
        gate = read_json(path)
        if gate["decision"] != "GO":
            flags.append(
                flag(WARNING, "gate_no_go", "trained despite a NO-GO gate: " + "; ".join(gate["reasons"]), [path])
            )
    return flags


# ---------------------------------------------------------------- files


def _check_safetensors(path: Path) -> str | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            for key in list(handle.keys())[:1]:
                handle.get_slice(key)
    except Exception as err:  # noqa: BLE001 - any decoding failure means a broken file
        return f"cannot be read as safetensors ({err})"
    return None


def check_files(
    directory: Path, expected: Mapping[str, str] | None, what: str, known: Mapping[str, str] | None = None
) -> list[dict]:
    """Missing, empty, hash-mismatched or undecodable files of a checkpoint-like directory.

    `expected` maps relative file names to sha256 (None: the directory's own checksums.json); `known` maps file
    paths to a sha256 already computed from their current bytes (the job's input check), not computed again."""
    if not directory.is_dir():
        return [flag(CRITICAL, "missing", f"{what} directory is missing", [directory])]
    sums_path = directory / CHECKSUMS
    if expected is None:
        if not sums_path.is_file():
            return [
                flag(WARNING, "no_checksums", f"{what} has no {CHECKSUMS}; file hashes cannot be checked", [directory])
            ]
        expected = read_json(sums_path)
    flags = []
    for name, digest in sorted(expected.items()):
        path = directory / name
        if not path.is_file():
            flags.append(flag(CRITICAL, "file_missing", f"{what}: {name} is missing", [path]))
        elif path.stat().st_size == 0:
            flags.append(flag(CRITICAL, "file_empty", f"{what}: {name} is empty", [path]))
        elif ((known or {}).get(str(path)) or sha256_file(path)) != digest:
            flags.append(
                flag(
                    CRITICAL,
                    "hash_mismatch",
                    f"{what}: {name} differs from its recorded sha256 (truncated or modified after it was written)",
                    [path],
                )
            )
        elif path.suffix == ".safetensors" and (problem := _check_safetensors(path)):
            flags.append(flag(CRITICAL, "file_unloadable", f"{what}: {name} {problem}", [path]))
    return flags


def representation_steps(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("step_*") if p.is_dir()) if root.is_dir() else []


def check_representations(root: Path) -> list[dict]:
    """Every step directory's files against the sha256 its metadata.json records."""
    flags = []
    for step in representation_steps(root):
        meta_path = step / "metadata.json"
        if not meta_path.is_file():
            flags.append(
                flag(CRITICAL, "file_missing", f"representations {step.name}: metadata.json is missing", [meta_path])
            )
            continue
        meta = read_json(meta_path)
        entries = [*(meta.get("layers") or []), *([meta["attention_mask"]] if meta.get("attention_mask") else [])]
        flags += check_files(step, {e["file"]: e["sha256"] for e in entries}, f"representations {step.name}")
    return flags


def expected_representation_steps(global_steps: int, every_steps: int, capture_step0: bool) -> list[int]:
    """The steps a run's representation callback captures: every `every_steps`, the last step, and 0 with
    capture_step0 (otherwise step 0 is the base extraction, not the run's)."""
    steps = set(range(every_steps, global_steps + 1, every_steps)) | {global_steps}
    return sorted(steps | ({0} if capture_step0 else set()))


def check_representation_steps(root: Path, global_steps: int, spec: Mapping[str, Any] | None, run: str) -> list[dict]:
    """The representation steps expected from representations.every_steps (and the run's global_steps) against
    the step directories found: a missing step (a short interval, a killed capture) is critical, as the drift
    table would silently have a gap there."""
    if not spec or not spec.get("enabled"):
        return []
    expected = expected_representation_steps(global_steps, int(spec["every_steps"]), bool(spec.get("capture_step0")))
    found = {int(p.name.removeprefix("step_")) for p in representation_steps(root)}
    missing = [s for s in expected if s not in found]
    if not missing:
        return []
    return [
        flag(
            CRITICAL,
            "representation_steps_missing",
            f"{run}: {len(missing)} of {len(expected)} expected representation steps missing "
            f"({', '.join(step_dir_name(s) for s in missing[:10])}{' ...' if len(missing) > 10 else ''}; "
            f"representations.every_steps {spec['every_steps']} over {global_steps} steps); rerun the run: "
            f"snakemake --forcerun train_run {root}",
            [root],
        )
    ]


# ---------------------------------------------------------------- models


def _probe_logits(model: Any, batch: Mapping[str, Any]) -> np.ndarray:
    """The model's output scores for the batch: logits, or start and end logits (extractive QA)."""
    import torch

    model.eval()
    with torch.no_grad():
        out = model(**batch)
    logits = out.logits if getattr(out, "logits", None) is not None else torch.stack([out.start_logits, out.end_logits])
    return logits.float().cpu().numpy()


def _load(model_spec: Any, task: Any, method: Any, path: Path) -> Any:
    from tunetrace.tasks.dispatch import get_task_type

    return get_task_type(task.type).load_tuned_model(model_spec, task, method, path)


def probe_batch(model_spec: Any, task: Any, data_dir: str | os.PathLike, examples: int) -> dict[str, Any]:
    """The first `examples` eval rows as the model reads them (the task type's probe text), one batch."""
    from tunetrace.data.readers import load_prepared
    from tunetrace.tasks.dispatch import get_task_type

    _, frame = load_prepared(data_dir)
    tokenizer, frame = get_task_type(task.type).probe_inputs(model_spec, task, frame.head(examples))
    pairs = frame[A.COL_TEXT_PAIR].tolist() if A.COL_TEXT_PAIR in frame else None
    return dict(
        tokenizer(
            frame[A.COL_TEXT].tolist(),
            pairs,
            truncation=True,
            max_length=task.max_length,
            padding=True,
            return_tensors="pt",
        )
    )


def check_model_loads(
    model_spec: Any,
    task: Any,
    method: Any,
    directories: Sequence[Path],
    final: Path,
    batch: Mapping[str, Any],
    tolerance: float,
) -> list[dict]:
    """Each checkpoint and the final model load and give finite logits; two loads of final agree."""
    flags = []
    for directory in [*directories, final]:
        try:
            logits = _probe_logits(_load(model_spec, task, method, directory), batch)
        except Exception as err:  # noqa: BLE001 - whatever breaks the load is the finding
            flags.append(flag(CRITICAL, "checkpoint_unloadable", f"{directory.name} does not load: {err}", [directory]))
            continue
        if not np.isfinite(logits).all():
            flags.append(flag(CRITICAL, "nonfinite_logits", f"{directory.name} gives NaN/inf logits", [directory]))
        if directory == final and np.isfinite(logits).all():
            again = _probe_logits(_load(model_spec, task, method, directory), batch)
            diff = float(np.max(np.abs(again - logits)))
            if not diff <= tolerance:
                flags.append(
                    flag(
                        CRITICAL,
                        "final_reload_mismatch",
                        f"two loads of the final model disagree (max |logit diff| {diff:.3g} > {tolerance:g})",
                        [directory],
                    )
                )
    return flags


def check_weights(analysis: Mapping[str, Any], run: str, path: str, min_update: float = 0.0) -> list[dict]:
    """The final weights against the base model's (the run's weight analysis): NaN/inf in a matrix, no matrix
    changed at all, which no loss curve shows when the wrong model was saved as final, or every matrix moved
    by less than `min_update` of its norm (validation.min_relative_update)."""
    matrices = analysis["matrices"]
    broken = [m["name"] for m in matrices if not m["finite"]]
    if broken:
        return [
            flag(
                CRITICAL,
                "nonfinite_weights",
                f"{run}: {len(broken)} of {len(matrices)} adapted weight matrices "
                f"hold NaN/inf (first: {broken[0]}); the run diverged; {FIX_DIVERGED}",
                [path],
            )
        ]
    if all(m["relative_update_norm"] == 0 for m in matrices):
        return [
            flag(
                CRITICAL,
                "weights_unchanged",
                f"{run}: the final weights equal the base model's in all "
                f"{len(matrices)} adapted matrices; training changed nothing (a learning rate of 0, frozen "
                f"parameters, or the base model saved as final)",
                [path],
            )
        ]
    largest = max((m["relative_update_norm"] for m in matrices), default=None)
    if largest is not None and largest < min_update:
        top = max(matrices, key=lambda m: m["relative_update_norm"])["name"]
        return [
            flag(
                CRITICAL,
                "weights_barely_changed",
                f"{run}: every one of the {len(matrices)} adapted matrices "
                f"moved by less than validation.min_relative_update {min_update:g} of its norm "
                f"(||W_tuned - W_base|| / ||W_base||; largest {largest:.3g}, {top}): the final model is the base "
                f"model in all but rounding; {FIX_STEPS}",
                [path],
            )
        ]
    return []


def degenerate_flags(
    task_type: Any,
    task: Any,
    method: Any,
    spec: ValidationSpec,
    run: str,
    run_dir: Path,
    records: Sequence[Mapping[str, Any]],
    metrics: Mapping[str, Any],
    metrics_path: str,
    predictions_path: str | os.PathLike | None,
    baseline_path: str | os.PathLike | None,
) -> list[dict]:
    """The checks that catch a model that learned nothing: its planned size and its warmup (run.json), its
    predictions (the task type's own signs) and its primary metric against the task's baselines."""
    flags, meta_path = [], run_dir / A.RUN_METADATA
    if meta_path.is_file():
        run_meta = read_json(meta_path)
        flags += check_sizing(run_meta, spec, run, str(meta_path))
        flags += check_warmup(run_meta, method, records, run, str(meta_path), str(run_dir / A.TRAIN_LOG))
    if predictions_path is not None:
        flags += check_predictions(task_type, task, spec, run, str(predictions_path))
    if baseline_path is not None:
        weights_key = f"tasks.{task.name}.class_weights" if task_type.num_labels(task) else None
        flags += check_baselines(
            metrics,
            read_json(baseline_path),
            task_type.trivial_baseline,
            spec,
            run,
            [metrics_path, str(baseline_path)],
            weights_key,
        )
    return flags


# ---------------------------------------------------------------- the report


def format_flags(document: Mapping[str, Any]) -> str:
    """The short text beside the JSON report."""
    title = f"{document['method']} / {document['task']} / seed {document['seed']}: " + (
        "no critical red flags" if document["passed"] else f"{document['critical']} CRITICAL red flag(s)"
    )
    lines = [title, "=" * len(title)]
    for item in document["flags"]:
        lines.append(f"[{item['severity'].upper()}] {item['code']}: {item['message']}")
        lines += [f"    {path}" for path in item["files"]]
    if not document["flags"]:
        lines.append("no red flags")
    return "\n".join(lines) + "\n"


def summarise(validation_paths: Sequence[str]) -> dict[str, Any]:
    """The comparison's validation section: counts and every flag with its run."""
    flags, runs = [], []
    for path in validation_paths:
        doc = read_json(path)
        runs.append(
            {
                "method": doc["method"],
                "task": doc["task"],
                "seed": doc["seed"],
                "passed": doc["passed"],
                "critical": doc["critical"],
                "warning": doc["warning"],
                "report": str(path),
            }
        )
        flags += [{"method": doc["method"], "task": doc["task"], "seed": doc["seed"], **f} for f in doc["flags"]]
    return {
        "critical": sum(r["critical"] for r in runs),
        "warning": sum(r["warning"] for r in runs),
        "runs": runs,
        "flags": flags,
    }


def seed_disagreement(
    document: Mapping[str, Any], max_spread: float | None, severity: str = WARNING
) -> list[dict[str, Any]]:
    """Study-level flags of the comparison: a method whose seeds' primary metric spreads (max - min, in the
    metric's units) by more than `max_spread` on a task; its mean +- std hides that the seeds disagree.
    None switches the check off; one seed has no spread."""
    if max_spread is None:
        return []
    flags = []
    for task, entry in document["tasks"].items():
        for method, summary in entry["methods"].items():
            values = {r["seed"]: r["primary"] for r in summary["runs"] if r["primary"] is not None}
            if len(values) < 2:
                continue
            spread = max(values.values()) - min(values.values())
            if spread > max_spread:
                per_seed = ", ".join(f"seed{s} {v:.4f}" for s, v in values.items())
                message = (
                    f"{method}/{task}: {entry['primary_metric']} spreads {spread:.4f} across seeds "
                    f"({per_seed}), above validation.max_seed_spread {max_spread}: the mean hides unstable "
                    "training; try more steps, a lower learning rate or more seeds before reading the "
                    "difference between methods"
                )
                flags.append(
                    {"method": method, "task": task, "seed": None, **flag(severity, "seed_disagreement", message)}
                )
    return flags


def enforce_strict(validation_paths: Sequence[str], strict: bool) -> None:
    """With strict, raise ValidationFailed listing every critical flag and the files behind it."""
    if not strict:
        return
    critical = [f for f in summarise(validation_paths)["flags"] if f["severity"] == CRITICAL]
    if critical:
        lines = [
            f"- {f['method']}/{f['task']}/seed{f['seed']} {f['code']}: {f['message']} [{', '.join(f['files'])}]"
            for f in critical
        ]
        raise ValidationFailed(
            f"validation.strict is true and {len(critical)} critical red flag(s) were found; "
            "results/comparison.json is not written:\n"
            + "\n".join(lines)
            + "\nFix the runs (see results/validation/) or set validation.strict: false."
        )
