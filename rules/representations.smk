rule extract_base_representations:
    input:
        eval="results/data/{task}/eval.parquet",
        model_check=get_model_check,
    output:
        reps=directory("results/representations/base/{task}/step_000000"),
    params:
        model=get_model_params,
        task=get_task_params,
        representations=get_base_representation_params,
        code=get_code_params("extract_base_representations"),
    log:
        "logs/extract_base_representations/{task}.log",
    benchmark:
        "benchmarks/extract_base_representations/{task}.tsv"
    threads: get_threads("extract_base_representations")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("extract_base_representations"),
        runtime=get_runtime("extract_base_representations"),
        gpu=get_slurm("extract_base_representations", "gpu"),
    script:
        "../workflow_scripts/extract_base_representations.py"
