# Params functions: each rule gets only the config slice it reads, as canonical JSON, so an edit to
# an unrelated key reruns nothing. Resource functions schedule jobs and stay out of params.

# Read only by the guard rules (gates, validation): editing them must not rerun training.
GUARD_KEYS = ("expected_range", "criteria", "gate")


def without_guard_keys(entry):
    return {k: v for k, v in entry.items() if k not in GUARD_KEYS}


def as_json(obj):
    """Canonical JSON: equal config slices give equal params, so unrelated edits rerun nothing."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def get_model_params(wildcards):
    return as_json(config["model"])


# Read only by prepare_data's degenerate-data check: no other rule's params hold them (the task's other jobs
# rerun after an edit only because prepare_data does).
DATA_CHECK_KEYS = ("min_train_rows_per_label", "allow_degenerate_data")


def get_task_params(wildcards):
    task = without_guard_keys(config["tasks"][wildcards.task])
    return as_json({k: v for k, v in task.items() if k not in DATA_CHECK_KEYS})


def get_validation_task_params(wildcards):
    """The task slice of validate_run: get_task_params' keys and the guard's (expected_range, criteria)."""
    return as_json({k: v for k, v in config["tasks"][wildcards.task].items() if k not in DATA_CHECK_KEYS})


def get_data_task_params(wildcards):
    """The task slice of prepare_data: get_task_params' keys and the degenerate-data check's."""
    return as_json(without_guard_keys(config["tasks"][wildcards.task]))


def get_lora_target_params(wildcards):
    """Each LoRA method's target_modules, the one LoRA key check_model reads (r, alpha, ... rerun nothing)."""
    return as_json({m: {"target_modules": config["methods"][m]["lora"]["target_modules"]} for m in LORA_METHODS})


def get_method_params(wildcards):
    method = getattr(wildcards, "method", None) or wildcards.lora_method
    return as_json(without_guard_keys(without_scheduling(config["methods"][method])))


def get_evaluation_params(wildcards):
    return as_json(config["evaluation"])


def get_tracking_params(wildcards):
    return as_json(config["tracking"])


def get_comparison_params(wildcards):
    """Only what the comparison reads: names, method types, seeds, model name."""
    return as_json(
        {
            "model": {"name_or_path": config["model"]["name_or_path"]},
            "tasks": {t: {"primary_metric": config["tasks"][t]["primary_metric"]} for t in TASKS},
            "methods": {m: {"type": config["methods"][m]["type"]} for m in METHODS},
            "seeds": SEEDS,
        }
    )


def _representations_without(*keys):
    return as_json({k: v for k, v in config["representations"].items() if k not in keys})


def get_representation_params(wildcards):
    """Extraction settings only, so changing a drift-only setting never reruns training."""
    return _representations_without("cka_batch_size")


def get_base_representation_params(wildcards):
    """The base extraction's settings: a training-only key (capture_step0) reruns no base extraction."""
    return _representations_without("cka_batch_size", "capture_step0")


def get_drift_params(wildcards):
    return as_json(config["representations"])


def get_weight_analysis_params(wildcards):
    return as_json(config["weight_analysis"])


def get_method_types_params(wildcards):
    return as_json({m: config["methods"][m]["type"] for m in METHODS})


# --- cluster resources and resume (issue 7) ---
# Memory, runtime and cores only schedule a job: they are left out of params, so moving a study to a
# bigger node reruns nothing. GPUs stay in params: the number of ranks changes the numbers.
SCHEDULING_KEYS = ("mem_mb", "runtime", "cpus")


def without_scheduling(method_config):
    """The method's config without its scheduling-only resources."""
    resources = {k: v for k, v in method_config.get("resources", {}).items() if k not in SCHEDULING_KEYS}
    return {**method_config, "resources": resources} if "resources" in method_config else method_config


def get_method_resources(wildcards):
    """The method's resources block, schema defaults filled."""
    return config["methods"][wildcards.method]["resources"]


# Multi-node training (snakemake-executor-plugin-slurm's resources): `gpu` becomes sbatch --gpus, a count for
# the whole job that Slurm may spread unevenly over nodes, so a multi-node job asks per node through
# `gres` (--gres=gpu:N) instead; the two exclude each other. `tasks` is --ntasks for a CPU job (one
# launcher per node) but --ntasks-per-gpu for a GPU job, so a GPU job leaves it 0 and gets Slurm's default
# of one task per node. `cpus_per_gpu` (--cpus-per-gpu) is rounded up, so each node has the method's cpus.
def get_train_nodes(wildcards):
    return get_method_resources(wildcards)["nodes"]


def get_train_gpus(wildcards):
    """GPUs of a one-node training job (sbatch --gpus); 0 for a multi-node one (see get_train_gres)."""
    resources = get_method_resources(wildcards)
    return resources["gpus"] if resources["nodes"] == 1 else 0


def get_train_gres(wildcards):
    """GPUs per node of a multi-node training job (sbatch --gres=gpu:N); empty otherwise."""
    resources = get_method_resources(wildcards)
    return f"gpu:{resources['gpus']}" if resources["nodes"] > 1 and resources["gpus"] else ""


def get_train_tasks(wildcards):
    """One task per node for a CPU job; 0 (unset) for a GPU job, whose default is one per node."""
    resources = get_method_resources(wildcards)
    return 0 if resources["gpus"] else resources["nodes"]


def get_train_cpus_per_gpu(wildcards):
    resources = get_method_resources(wildcards)
    return -(-resources["cpus"] // resources["gpus"]) if resources["gpus"] else 0


def get_train_threads(wildcards):
    return get_method_resources(wildcards)["cpus"]


def get_gate_params(wildcards):
    return as_json(config["methods"][wildcards.method]["gate"])


def get_validation_params(wildcards):
    return as_json(config["validation"])


# validation's rule of thumb for run length, read by train_run to warn before training (guard/sizing.py)
SIZING_KEYS = ("min_steps", "min_steps_per_label", "min_epochs")


def get_sizing_params(wildcards):
    """Only the sizing thresholds: other validation keys never rerun training."""
    return as_json({k: config["validation"][k] for k in SIZING_KEYS})


def get_strict_params(wildcards):
    """Only the strict switch, so threshold edits rerun validation but not the comparison."""
    return as_json({"strict": config["validation"]["strict"]})


def get_pilot_params(wildcards):
    return as_json({"pilot_steps": config["methods"][wildcards.method]["gate"]["pilot_steps"]})


def get_expected_range_params(wildcards):
    return as_json(config["tasks"][wildcards.task]["expected_range"])
