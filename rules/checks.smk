# Checks that stop a study before any job loads weights: the base model of each task (its name, its config,
# the LoRA targets of every lora method), built on the meta device from config.json alone.

# A checkpoint, so that one snakemake call reaches the fixed point: when the check is to rerun, Snakemake
# decides again about the jobs after it once it has run. Without that, a job that loads the base model and
# reads a rerunning check as an ancient() input was never looked at (Snakemake sets every job downstream of
# a job to rerun aside, to be planned through its inputs, and an ancient input plans nothing), so a call
# ran the check alone and the next call the training whose params had changed. Jobs read it through
# get_model_check (rules/common.smk).
MODEL_CHECK = "results/checks/model/{task}.json"


checkpoint check_model:
    output:
        summary=MODEL_CHECK,
    params:
        model=get_model_params,
        task=get_task_params,
        lora=get_lora_target_params,
        code=get_code_params("check_model"),
    log:
        "logs/check_model/{task}.log",
    benchmark:
        "benchmarks/check_model/{task}.tsv"
    threads: get_threads("check_model")
    conda:
        ENV_FILE
    resources:
        mem_mb=get_mem_mb("check_model"),
        runtime=get_runtime("check_model"),
    script:
        "../workflow_scripts/check_model.py"
