"""Adapter for rule compare_runs: results/comparison.json and comparison.md."""

from tunetrace.jobcontext import job
from tunetrace.stages.compare import compare_runs, refuse_comparison

# drift, weights and drift_plots only with representations on (rules/common.smk)
INPUTS = (
    "baselines",
    "evals",
    "runs",
    "merge_checks",
    "manifests",
    "validations",
    "curve_plots",
    "drift",
    "weights",
    "drift_plots",
)

with job(snakemake, check_inputs=True, refuse=refuse_comparison) as j:
    compare_runs(
        j.param("study"),
        {name: list(j.input.get(name, [])) for name in INPUTS},
        out_json=j.output.comparison,
        out_md=j.output.markdown,
        study_checks=j.param("validation"),  # validation.max_seed_spread: the seed_disagreement flag
    )
