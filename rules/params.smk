# Params functions: each rule gets only the config slice it reads, as canonical JSON, so an edit to
# an unrelated key reruns nothing. Resource functions (rules/resources.smk) schedule jobs and stay out of params.

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


# Memory, runtime and cores only schedule a job: they are left out of params, so moving a study to a
# bigger node reruns nothing. GPUs stay in params: the number of ranks changes the numbers. The requests
# themselves come from tunetrace.cluster.requests (rules/resources.smk).
SCHEDULING_KEYS = ("mem_mb", "runtime", "cpus")


def without_scheduling(method_config):
    """The method's config without its scheduling-only resources."""
    resources = {k: v for k, v in method_config.get("resources", {}).items() if k not in SCHEDULING_KEYS}
    return {**method_config, "resources": resources} if "resources" in method_config else method_config


def get_gate_params(wildcards):
    return as_json(config["methods"][wildcards.method]["gate"])


def get_validation_params(wildcards):
    return as_json(config["validation"])


# validation's rule of thumb for run length, read by train_run to warn before training (training/sizing.py)
SIZING_KEYS = ("min_steps", "min_steps_per_label", "min_epochs")


def get_sizing_params(wildcards):
    """Only the sizing thresholds: other validation keys never rerun training."""
    return as_json({k: config["validation"][k] for k in SIZING_KEYS})


def get_strict_params(wildcards):
    """Only the strict switch and the study-level seed check, so threshold edits rerun validation but not the
    comparison."""
    validation = config["validation"]
    severity = "critical" if "seed_disagreement" in validation["critical_codes"] else "warning"
    return as_json({"strict": validation["strict"], "max_seed_spread": validation["max_seed_spread"],
                    "seed_disagreement_severity": severity})


def get_pilot_params(wildcards):
    return as_json({"pilot_steps": config["methods"][wildcards.method]["gate"]["pilot_steps"]})


def get_expected_range_params(wildcards):
    return as_json(config["tasks"][wildcards.task]["expected_range"])
