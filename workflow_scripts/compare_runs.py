"""Adapter for rule compare_runs: results/comparison.json and comparison.md."""

from tunetrace.jobcontext import job
from tunetrace.stages.compare import compare_runs

# the last three only with representations on (rules/common.smk)
INPUTS = ("baselines", "evals", "runs", "merge_checks", "manifests", "validations", "drift", "weights", "drift_plots")

with job(snakemake, check_inputs=True) as j:
    compare_runs(
        j.param("study"),
        {name: list(j.input.get(name, [])) for name in INPUTS},
        strict=j.param("validation")["strict"],  # a critical red flag stops it before anything is written
        out_json=j.output.comparison,
        out_md=j.output.markdown,
    )
