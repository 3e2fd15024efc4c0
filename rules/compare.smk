rule compare_runs:
    input:
        unpack(get_comparison_inputs),
    output:
        # update(): Snakemake leaves them in place (and puts them back if the job fails), so a refused
        # comparison (forged input, strict red flag) keeps the previous one
        comparison=update("results/comparison.json"),
        markdown=update(
            report(
                "results/comparison.md",
                caption="../report/comparison.rst",
                category="Comparison",
            )
        ),
    params:
        study=get_comparison_params,
        validation=get_strict_params,
        code=get_code_params("compare_runs"),
    log:
        "logs/compare_runs/compare_runs.log",
    benchmark:
        "benchmarks/compare_runs/compare_runs.tsv"
    threads: get_threads("compare_runs")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("compare_runs"),
        runtime=get_runtime("compare_runs"),
    script:
        "../workflow_scripts/compare_runs.py"
