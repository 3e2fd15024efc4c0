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


# On demand: any saved checkpoint of a run as a target, e.g. results/eval/full/demo/seed0/step40/metrics.json
# (the run must save that step: methods.<m>.save_every_steps).
rule evaluate_checkpoint:
    input:
        eval="results/data/{task}/eval.parquet",
        checkpoints="results/runs/{method}/{task}/seed{seed}/checkpoints",
        model_check=get_model_check,
    output:
        metrics="results/eval/{method}/{task}/seed{seed}/step{step}/metrics.json",
        predictions="results/eval/{method}/{task}/seed{seed}/step{step}/predictions.parquet",
        report="results/eval/{method}/{task}/seed{seed}/step{step}/report.txt",
    wildcard_constraints:
        step=r"\d+",
    params:
        model=get_model_params,
        task=get_task_params,
        method=get_method_params,
        evaluation=get_evaluation_params,
        code=get_code_params("evaluate_checkpoint"),
    log:
        "logs/evaluate_checkpoint/{method}/{task}/seed{seed}/step{step}.log",
    benchmark:
        "benchmarks/evaluate_checkpoint/{method}/{task}/seed{seed}/step{step}.tsv"
    threads: get_threads("evaluate_checkpoint")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("evaluate_checkpoint"),
        runtime=get_runtime("evaluate_checkpoint"),
        gpu=get_slurm("evaluate_checkpoint", "gpu"),
    script:
        "../workflow_scripts/evaluate_checkpoint.py"
