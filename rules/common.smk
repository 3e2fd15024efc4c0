# Config validation and every input/params function of the workflow.
import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# Jobs import the tunetrace library of *this* checkout, whatever else is installed.
PKG_DIR = str(Path(workflow.basedir) / "pkg")
sys.path.insert(0, PKG_DIR)
# (PYTHONPATH is extended, not required, so it is no `envvars:` of the workflow.)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (PKG_DIR, os.environ.get("PYTHONPATH")) if p))

from tunetrace.config import ConfigError, check_data_files, load_schema, validate_config

CONFIG_SCHEMA = str(Path(workflow.basedir) / "config" / "schema" / "config.schema.yaml")
ENV_FILE = "../envs/tunetrace.yaml"

try:
    _checked = validate_config(config, load_schema(CONFIG_SCHEMA))
    check_data_files(_checked)
except ConfigError as err:
    raise WorkflowError(f"tunetrace: {err}") from None
validate(config, CONFIG_SCHEMA)  # Snakemake's own check; also fills the schema defaults
config.update(_checked)

TASKS = sorted(config["tasks"])
METHODS = sorted(config["methods"])
LORA_METHODS = [m for m in METHODS if config["methods"][m]["type"] == "lora"]
SEEDS = sorted(config["seeds"])


wildcard_constraints:
    task="[A-Za-z][A-Za-z0-9_]*",
    method="[A-Za-z][A-Za-z0-9_]*",
    lora_method="|".join(LORA_METHODS) or "(?!)",
    seed=r"\d+",


# Read only by the guard rules (gates, validation): editing them must not rerun training.
GUARD_KEYS = ("expected_range", "gate")


def without_guard_keys(entry):
    return {k: v for k, v in entry.items() if k not in GUARD_KEYS}


def as_json(obj):
    """Canonical JSON: equal config slices give equal params, so unrelated edits rerun nothing."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def get_model_params(wildcards):
    return as_json(config["model"])


def get_task_params(wildcards):
    return as_json(without_guard_keys(config["tasks"][wildcards.task]))


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


def get_data_sources(wildcards):
    """The task's local data files, so editing one reruns that task's jobs."""
    source = config["tasks"][wildcards.task]["source"]
    if source["format"] == "hub":
        return []
    return [source[split] for split in ("train", "eval") if source.get(split)]


def get_comparison_inputs(wildcards):
    runs = [(m, t, s) for m in METHODS for t in TASKS for s in SEEDS]
    lora_runs = [(m, t, s) for (m, t, s) in runs if m in LORA_METHODS]
    return {
        "baselines": [f"results/baseline/{t}/metrics.json" for t in TASKS],
        "manifests": [f"results/data/{t}/manifest.json" for t in TASKS],
        "evals": [f"results/eval/{m}/{t}/seed{s}/metrics.json" for m, t, s in runs],
        "runs": [f"results/runs/{m}/{t}/seed{s}/run.json" for m, t, s in runs],
        "merge_checks": [f"results/merge_checks/{m}/{t}/seed{s}.json" for m, t, s in lora_runs],
        "validations": [f"results/validation/{m}/{t}/seed{s}.json" for m, t, s in runs],
        **(get_drift_inputs(runs) if config["representations"]["enabled"] else {}),
    }


def get_representation_params(wildcards):
    """Extraction settings only, so changing a drift-only setting never reruns training."""
    return as_json({k: v for k, v in config["representations"].items() if k != "cka_batch_size"})


def get_drift_params(wildcards):
    return as_json(config["representations"])


def get_weight_analysis_params(wildcards):
    return as_json(config["weight_analysis"])


def get_method_types_params(wildcards):
    return as_json({m: config["methods"][m]["type"] for m in METHODS})


def get_task_drift_tables(wildcards):
    return [f"results/drift/{m}/{wildcards.task}/seed{s}.parquet" for m in METHODS for s in SEEDS]


def get_drift_inputs(runs):
    """Drift tables, weight analyses and per-task drift plots of every run (every task type), for the comparison."""
    return {
        "drift": [f"results/drift/{m}/{t}/seed{s}.parquet" for m, t, s in runs],
        "weights": [f"results/weights/{m}/{t}/seed{s}.json" for m, t, s in runs],
        "drift_plots": [f"results/plots/drift/{t}_final_cka_by_layer.png" for t in sorted({t for _, t, _ in runs})],
    }


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


def get_train_gpus(wildcards):
    return get_method_resources(wildcards)["gpus"]


def get_train_threads(wildcards):
    return get_method_resources(wildcards)["cpus"]


def get_train_mem_mb(wildcards, attempt):
    """Memory grows with each retry: a job killed for memory gets twice as much on attempt 2."""
    return get_method_resources(wildcards)["mem_mb"] * attempt


def get_train_runtime(wildcards, attempt):
    """Runtime (minutes) grows with each retry; the retry resumes from the last checkpoint."""
    return get_method_resources(wildcards)["runtime"] * attempt


import functools

from tunetrace.tasks import TASK_TYPE_MODULES

# Library modules (pkg/tunetrace/<name>.py) whose code shapes each rule's outputs. Their content
# hashes are a param of the rule: editing metrics.py reruns evaluation but not training, and
# touching a module without changing it reruns nothing. A new rule adds its entry here and
# `code=get_code_params("<rule>")` to its params.
RULE_MODULES = {
    "prepare_data": ["config", "data", "task_data"],
    "evaluate_baseline": ["baseline", "config", "data", "evaluation", "metrics", "models", "tasks", "tiny_models"],
    "train_run": ["callbacks", "checkpoints", "config", "data", "launch", "models", "representations", "tasks",
                  "tiny_models", "tracking", "training"],
    "evaluate_run": ["config", "data", "evaluation", "metrics", "models", "tasks", "tiny_models"],
    "merge_adapter": ["config", "merge", "models", "tiny_models"],
    "verify_merge": ["config", "data", "merge", "metrics", "models", "tasks", "tiny_models"],
    "compare_runs": ["config", "drift", "report", "validation"],
    "extract_base_representations": ["config", "data", "models", "representations", "tasks", "tiny_models"],
    "compute_drift": ["drift", "representations", "similarity"],
    "plot_drift": ["drift"],
    "analyze_weights": ["config", "models", "tasks", "tiny_models", "weightspace"],
    "summarize_lineage": ["audit", "lineage"],
    "pilot_run": ["checkpoints", "config", "data", "evaluation", "gates", "metrics", "models", "tasks", "tiny_models",
                  "training"],
    "evaluate_gate": ["gates", "metrics"],
    "validate_run": ["callbacks", "config", "models", "representations", "tasks", "tiny_models", "validation"],
    "run_smoke_test": ["config", "data", "models", "smoke", "tasks", "tiny_models", "training"],
}


@functools.lru_cache(maxsize=None)
def module_hash(module):
    """sha256 (first 16 hex digits) of one library module of this checkout, once per DAG build."""
    from tunetrace.fileio import sha256_file

    return sha256_file(Path(PKG_DIR) / "tunetrace" / f"{module}.py")[:16]


def module_hashes(modules):
    return {m: module_hash(m) for m in sorted(set(modules))}


@functools.lru_cache(maxsize=None)
def script_hash(rule_name):
    """sha256 (first 16 hex digits) of the workflow script of `rule_name` (named after its rule)."""
    from tunetrace.fileio import sha256_file

    return sha256_file(Path(workflow.basedir) / "workflow_scripts" / f"{rule_name}.py")[:16]


def get_code_params(rule_name):
    """Params function: the content hashes of the workflow script and library modules `rule_name` runs.

    With these in params, the profiles leave Snakemake's `code` rerun trigger off (it compares a
    script's mtime): editing a script reruns its rule, touching it without a change reruns nothing.
    """

    def code_params(wildcards):
        modules = list(RULE_MODULES[rule_name])
        method = getattr(wildcards, "method", None)
        if rule_name == "train_run" and config["methods"][method].get("early_stopping_patience"):
            modules.append("metrics")  # early stopping picks the best checkpoint by a metric
        task = getattr(wildcards, "task", None)
        handler = TASK_TYPE_MODULES.get(config["tasks"][task]["type"]) if task else None
        if handler and rule_name != "compare_runs":
            modules += [handler.rsplit(".", 1)[-1], "task_data"]  # the task type's own module
        return as_json({**module_hashes(modules), f"workflow_scripts/{rule_name}.py": script_hash(rule_name)})

    return code_params


def get_gate_input(wildcards):
    """The GO/NO-GO decision: an input of train_run only for methods with gate.enabled."""
    if config["methods"][wildcards.method]["gate"]["enabled"]:
        return [f"results/gates/{wildcards.method}/{wildcards.task}/seed{wildcards.seed}.json"]
    return []


def get_gate_params(wildcards):
    return as_json(config["methods"][wildcards.method]["gate"])


def get_validation_params(wildcards):
    return as_json(config["validation"])


def get_strict_params(wildcards):
    """Only the strict switch, so threshold edits rerun validation but not the comparison."""
    return as_json({"strict": config["validation"]["strict"]})


def get_smoke_targets(wildcards):
    return [f"results/smoke/{m}/{t}.json" for m in METHODS for t in TASKS]


def get_pilot_params(wildcards):
    return as_json({"pilot_steps": config["methods"][wildcards.method]["gate"]["pilot_steps"]})


def get_expected_range_params(wildcards):
    return as_json(config["tasks"][wildcards.task]["expected_range"])
