rule train_run:
    input:
        train="results/data/{task}/train.parquet",
        eval="results/data/{task}/eval.parquet",
        gate=get_gate_input,
        model_check=ancient(MODEL_CHECK),
    output:
        run_dir=directory("results/runs/{method}/{task}/seed{seed}/final"),
        checkpoints=directory("results/runs/{method}/{task}/seed{seed}/checkpoints"),
        train_log="results/runs/{method}/{task}/seed{seed}/train_log.jsonl",
        metadata="results/runs/{method}/{task}/seed{seed}/run.json",
        reps=directory("results/representations/{method}/{task}/seed{seed}"),
    params:
        model=get_model_params,
        task=get_task_params,
        method=get_method_params,
        tracking=get_tracking_params,
        # Not an output: Snakemake deletes outputs before rerunning a job, and resume needs these.
        resume_dir="results/checkpoints/{method}/{task}/seed{seed}",
        code=get_code_params("train_run"),
        representations=get_representation_params,
        sizing=get_sizing_params,
    log:
        "logs/train_run/{method}/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/train_run/{method}/{task}/seed{seed}.tsv"
    threads: get_train_threads
    conda:
        ENV_FILE
    resources:
        mem_mb=get_train_mem_mb,
        runtime=get_train_runtime,
        gpu=get_train_gpus,
    script:
        "../workflow_scripts/train_run.py"
