rule compute_drift:
    input:
        base="results/representations/base/{task}/step_000000",
        reps="results/representations/{method}/{task}/seed{seed}",
    output:
        table="results/drift/{method}/{task}/seed{seed}.parquet",
        heatmap="results/plots/drift/{method}/{task}/seed{seed}_cka_heatmap.png",
    params:
        representations=get_drift_params,
        code=get_code_params("compute_drift"),
    log:
        "logs/compute_drift/{method}/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/compute_drift/{method}/{task}/seed{seed}.tsv"
    threads: get_threads("compute_drift")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("compute_drift"),
        runtime=get_runtime("compute_drift"),
    script:
        "../workflow_scripts/compute_drift.py"


rule plot_drift:
    input:
        tables=get_task_drift_tables,
    output:
        plot="results/plots/drift/{task}_final_cka_by_layer.png",
    params:
        methods=get_method_types_params,
        code=get_code_params("plot_drift"),
    log:
        "logs/plot_drift/{task}.log",
    benchmark:
        "benchmarks/plot_drift/{task}.tsv"
    threads: get_threads("plot_drift")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("plot_drift"),
        runtime=get_runtime("plot_drift"),
    script:
        "../workflow_scripts/plot_drift.py"
