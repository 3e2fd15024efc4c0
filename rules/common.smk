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
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (PKG_DIR, os.environ.get("PYTHONPATH")) if p)

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
    return as_json(without_guard_keys(config["methods"][method]))


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
    }


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
