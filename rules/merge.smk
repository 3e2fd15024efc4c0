rule merge_adapter:
    input:
        adapter="results/runs/{lora_method}/{task}/seed{seed}/final",
    output:
        merged=directory("results/merged/{lora_method}/{task}/seed{seed}"),
    params:
        model=get_model_params,
        task=get_task_params,
        code=get_code_params("merge_adapter"),
    log:
        "logs/merge_adapter/{lora_method}/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/merge_adapter/{lora_method}/{task}/seed{seed}.tsv"
    threads: get_threads("merge_adapter")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("merge_adapter"),
        runtime=get_runtime("merge_adapter"),
        gpu=get_slurm("merge_adapter", "gpu"),
    script:
        "../workflow_scripts/merge_adapter.py"


rule verify_merge:
    input:
        eval="results/data/{task}/eval.parquet",
        adapter="results/runs/{lora_method}/{task}/seed{seed}/final",
        merged="results/merged/{lora_method}/{task}/seed{seed}",
    output:
        check="results/merge_checks/{lora_method}/{task}/seed{seed}.json",
    params:
        model=get_model_params,
        task=get_task_params,
        evaluation=get_evaluation_params,
        code=get_code_params("verify_merge"),
    log:
        "logs/verify_merge/{lora_method}/{task}/seed{seed}.log",
    benchmark:
        "benchmarks/verify_merge/{lora_method}/{task}/seed{seed}.tsv"
    threads: get_threads("verify_merge")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("verify_merge"),
        runtime=get_runtime("verify_merge"),
        gpu=get_slurm("verify_merge", "gpu"),
    script:
        "../workflow_scripts/verify_merge.py"
