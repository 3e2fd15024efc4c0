# Guard: GO/NO-GO gate (pilot run vs baseline), red-flag validation of every run, smoke target.


rule pilot_run:
    input:
        train="results/data/{task}/train.parquet",
        eval="results/data/{task}/eval.parquet",
        model_check=get_model_check,
    output:
        metrics="results/pilots/{method}/{task}/seed{seed}/metrics.json",
        metadata="results/pilots/{method}/{task}/seed{seed}/run.json",
        train_log="results/pilots/{method}/{task}/seed{seed}/train_log.jsonl",
    params:
        model=get_model_params,
        task=get_task_params,
        method=get_method_params,
        pilot=get_pilot_params,
        evaluation=get_evaluation_params,
        code=get_code_params("pilot_run"),
    log:
        "logs/pilot_run/{method}/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/pilot_run/{method}/{task}/seed{seed}.tsv"
    priority: TRAINING_PATH_PRIORITY
    threads: get_threads("pilot_run")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("pilot_run"),
        runtime=get_runtime("pilot_run"),
        gpu=get_slurm("pilot_run", "gpu"),
        nodes=get_slurm("pilot_run", "nodes"),
        gres=get_slurm("pilot_run", "gres"),
        tasks=get_slurm("pilot_run", "tasks"),
        cpus_per_gpu=get_slurm("pilot_run", "cpus_per_gpu"),
    script:
        "../workflow_scripts/pilot_run.py"


rule evaluate_gate:
    input:
        pilot_metrics="results/pilots/{method}/{task}/seed{seed}/metrics.json",
        pilot_run="results/pilots/{method}/{task}/seed{seed}/run.json",
        baseline="results/baseline/{task}/metrics.json",
    output:
        gate="results/gates/{method}/{task}/seed{seed}.json",
    params:
        gate=get_gate_params,
        code=get_code_params("evaluate_gate"),
    log:
        "logs/evaluate_gate/{method}/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/evaluate_gate/{method}/{task}/seed{seed}.tsv"
    priority: TRAINING_PATH_PRIORITY
    threads: get_threads("evaluate_gate")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("evaluate_gate"),
        runtime=get_runtime("evaluate_gate"),
    script:
        "../workflow_scripts/evaluate_gate.py"


rule validate_run:
    input:
        eval="results/data/{task}/eval.parquet",
        final="results/runs/{method}/{task}/seed{seed}/final",
        checkpoints="results/runs/{method}/{task}/seed{seed}/checkpoints",
        train_log="results/runs/{method}/{task}/seed{seed}/train_log.jsonl",
        metadata="results/runs/{method}/{task}/seed{seed}/run.json",
        metrics="results/eval/{method}/{task}/seed{seed}/metrics.json",
        predictions="results/eval/{method}/{task}/seed{seed}/predictions.parquet",
        baseline="results/baseline/{task}/metrics.json",
        gate=get_gate_input,
        reps="results/representations/{method}/{task}/seed{seed}",
    output:
        report="results/validation/{method}/{task}/seed{seed}.json",
        text="results/validation/{method}/{task}/seed{seed}.txt",
        **WEIGHT_ANALYSIS_OUTPUT,
    params:
        model=get_model_params,
        task=get_validation_task_params,
        method=get_method_params,
        validation=get_validation_params,
        expected_range=get_expected_range_params,
        weight_analysis=get_weight_analysis_params,
        representations=get_representation_params,
        code=get_code_params("validate_run"),
    log:
        "logs/validate_run/{method}/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/validate_run/{method}/{task}/seed{seed}.tsv"
    threads: get_threads("validate_run")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("validate_run"),
        runtime=get_runtime("validate_run"),
        gpu=get_slurm("validate_run", "gpu"),
    script:
        "../workflow_scripts/validate_run.py"


rule run_smoke_test:
    input:
        train="results/data/{task}/train.parquet",
        eval="results/data/{task}/eval.parquet",
        model_check=get_model_check,
    output:
        report="results/smoke/{method}/{task}.json",
    params:
        model=get_model_params,
        task=get_task_params,
        method=get_method_params,
        validation=get_validation_params,
        work_dir="results/smoke/{method}/{task}",
        code=get_code_params("run_smoke_test"),
    log:
        "logs/run_smoke_test/{method}/{task}.log",
    benchmark:
        "benchmarks/run_smoke_test/{method}/{task}.tsv"
    threads: get_threads("run_smoke_test")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("run_smoke_test"),
        runtime=get_runtime("run_smoke_test"),
        gpu=get_slurm("run_smoke_test", "gpu"),
        nodes=get_slurm("run_smoke_test", "nodes"),
        gres=get_slurm("run_smoke_test", "gres"),
        tasks=get_slurm("run_smoke_test", "tasks"),
        cpus_per_gpu=get_slurm("run_smoke_test", "cpus_per_gpu"),
    script:
        "../workflow_scripts/run_smoke_test.py"


rule smoke:
    input:
        get_smoke_targets,
