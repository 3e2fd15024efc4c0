rule compare_runs:
    input:
        unpack(get_comparison_inputs),
    output:
        comparison="results/comparison.json",
        markdown="results/comparison.md",
    params:
        study=get_comparison_params,
        validation=get_strict_params,
    log:
        "logs/compare_runs/compare_runs.log",
    conda:
        ENV_FILE
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../workflow_scripts/compare_runs.py"
