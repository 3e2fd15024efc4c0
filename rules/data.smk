rule prepare_data:
    input:
        sources=get_data_sources,
    output:
        train="results/data/{task}/train.parquet",
        eval="results/data/{task}/eval.parquet",
        manifest="results/data/{task}/manifest.json",
    params:
        task=get_data_task_params,
        code=get_code_params("prepare_data"),
    log:
        "logs/prepare_data/{task}.log",
    benchmark:
        "benchmarks/prepare_data/{task}.tsv"
    threads: get_threads("prepare_data")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("prepare_data"),
        runtime=get_runtime("prepare_data"),
    script:
        "../workflow_scripts/prepare_data.py"
