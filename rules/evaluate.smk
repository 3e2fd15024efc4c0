rule evaluate_run:
    input:
        eval="results/data/{task}/eval.parquet",
        final="results/runs/{method}/{task}/seed{seed}/final",
        outputs="results/runs/{method}/{task}/seed{seed}/eval_outputs.parquet",
    output:
        metrics="results/eval/{method}/{task}/seed{seed}/metrics.json",
        predictions="results/eval/{method}/{task}/seed{seed}/predictions.parquet",
        predictions_csv="results/eval/{method}/{task}/seed{seed}/predictions.csv",
        report="results/eval/{method}/{task}/seed{seed}/report.txt",
    params:
        task=get_task_params,
        method=get_method_params,
        evaluation=get_evaluation_params,
        code=get_code_params("evaluate_run"),
    log:
        "logs/evaluate_run/{method}/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate_run/{method}/{task}/seed{seed}.tsv"
    threads: get_threads("evaluate_run")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("evaluate_run"),
        runtime=get_runtime("evaluate_run"),
    script:
        "../workflow_scripts/evaluate_run.py"
