rule train_run:
    input:
        train="results/data/{task}/train.parquet",
        eval="results/data/{task}/eval.parquet",
        gate=get_gate_input,
    output:
        run_dir=directory("results/runs/{method}/{task}/seed{seed}/final"),
        checkpoints=directory("results/runs/{method}/{task}/seed{seed}/checkpoints"),
        train_log="results/runs/{method}/{task}/seed{seed}/train_log.jsonl",
        metadata="results/runs/{method}/{task}/seed{seed}/run.json",
    params:
        model=get_model_params,
        task=get_task_params,
        method=get_method_params,
        tracking=get_tracking_params,
        run_dir="results/runs/{method}/{task}/seed{seed}",
    log:
        "logs/train_run/{method}/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/train_run/{method}/{task}/seed{seed}.tsv"
    threads: 2
    conda:
        ENV_FILE
    resources:
        mem_mb=8000,
        runtime=240,
    script:
        "../workflow_scripts/train_run.py"
