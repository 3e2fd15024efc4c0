"""Every red-flag code validate_run can raise (docs/guard.md describes each, with its default severity).

Torch-free, so config validation can refuse a `validation.warning_codes` / `critical_codes` entry that
names no flag (a typo would otherwise change nothing, silently). tests/test_validation.py scans the
package for the codes it raises and checks this set holds exactly those.
"""

from __future__ import annotations

RED_FLAG_CODES = frozenset(
    {
        # files and checkpoints
        "missing",
        "file_missing",
        "file_empty",
        "file_unloadable",
        "no_checksums",
        "hash_mismatch",
        "checkpoint_unloadable",
        "final_reload_mismatch",
        # training dynamics
        "no_loss_logged",
        "nonfinite_loss",
        "nonfinite_grad_norm",
        "grad_norm_high",
        "loss_increasing",
        "loss_oscillating",
        "final_loss_high",
        "overfitting",
        "loss_barely_moved",
        "loss_diverged",
        "loss_at_chance",
        "too_few_steps",
        "lr_never_warmed_up",
        # the evaluated model
        "nonfinite_logits",
        "metric_below_range",
        "metric_above_range",
        "single_class_predictions",
        "prediction_entropy_low",
        "positive_never_predicted",
        "not_better_than_trivial",
        "below_baseline",
        # tasks.<task>.criteria
        "criterion_not_met",
        "criterion_suspiciously_good",
        "criterion_unmeasured",
        # the final weights against the base model's (the weight analysis)
        "nonfinite_weights",
        "weights_unchanged",
        "weights_barely_changed",
        # the gate
        "gate_no_go",
        # the study (comparison level, across seeds) and the representation steps of a run
        "seed_disagreement",
        "representation_steps_missing",
    }
)
# Resource trends: "<log key>_trend_up" for step_time_s, cpu_rss_mb and each gpu<N>_allocated_mb.
TREND_SUFFIX = "_trend_up"


def is_known(code: str) -> bool:
    return code in RED_FLAG_CODES or code.endswith(TREND_SUFFIX)
