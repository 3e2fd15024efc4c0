rule evaluate_baseline:
    input:
        train="results/data/{task}/train.parquet",
        eval="results/data/{task}/eval.parquet",
        model_check=get_model_check,
    output:
        metrics="results/baseline/{task}/metrics.json",
        predictions="results/baseline/{task}/predictions.parquet",
    params:
        model=get_model_params,
        task=get_task_params,
        evaluation=get_evaluation_params,
        code=get_code_params("evaluate_baseline"),
    log:
        "logs/evaluate_baseline/{task}.log",
    benchmark:
        "benchmarks/evaluate_baseline/{task}.tsv"
    priority: TRAINING_PATH_PRIORITY
    threads: get_threads("evaluate_baseline")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("evaluate_baseline"),
        runtime=get_runtime("evaluate_baseline"),
        gpu=get_slurm("evaluate_baseline", "gpu"),
    script:
        "../workflow_scripts/evaluate_baseline.py"
