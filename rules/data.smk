rule prepare_data:
    input:
        sources=get_data_sources,
    output:
        train="results/data/{task}/train.parquet",
        eval="results/data/{task}/eval.parquet",
        manifest="results/data/{task}/manifest.json",
    params:
        task=get_task_params,
    log:
        "logs/prepare_data/{task}.log",
    conda:
        ENV_FILE
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../workflow_scripts/prepare_data.py"
