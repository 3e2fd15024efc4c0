rule train_run:
    input:
        train="results/data/{task}/train.parquet",
        eval="results/data/{task}/eval.parquet",
        gate=get_gate_input,
        # a passed smoke test (run_smoke_test fails its job otherwise), with validation.smoke_before_training
        smoke=get_smoke_input,
        model_check=get_model_check,
    output:
        run_dir=directory("results/runs/{method}/{task}/seed{seed}/final"),
        checkpoints=directory("results/runs/{method}/{task}/seed{seed}/checkpoints"),
        train_log="results/runs/{method}/{task}/seed{seed}/train_log.jsonl",
        metadata="results/runs/{method}/{task}/seed{seed}/run.json",
        # the saved final model's raw outputs on the eval split, scored by evaluate_run
        outputs="results/runs/{method}/{task}/seed{seed}/eval_outputs.parquet",
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
    priority: TRAINING_PATH_PRIORITY
    threads: get_threads("train_run")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("train_run"),
        runtime=get_runtime("train_run"),
        gpu=get_slurm("train_run", "gpu"),
        nodes=get_slurm("train_run", "nodes"),
        gres=get_slurm("train_run", "gres"),
        tasks=get_slurm("train_run", "tasks"),
        cpus_per_gpu=get_slurm("train_run", "cpus_per_gpu"),
    script:
        "../workflow_scripts/train_run.py"
