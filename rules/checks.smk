# Checks that stop a study before any job loads weights: the base model of each task (its name, its config,
# the LoRA targets of every lora method), built on the meta device from config.json alone.

# Every job that loads the base model reads the check as an ancient() input: it waits for the check to
# pass, but the check being rewritten (it reruns when any lora method's target_modules or its own code
# change) reruns none of them; their own params and code decide that.
MODEL_CHECK = "results/checks/model/{task}.json"


rule check_model:
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
