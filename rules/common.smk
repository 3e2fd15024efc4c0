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


def as_json(obj):
    """Canonical JSON: equal config slices give equal params, so unrelated edits rerun nothing."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def get_model_params(wildcards):
    return as_json(config["model"])


def get_task_params(wildcards):
    return as_json(config["tasks"][wildcards.task])


def get_method_params(wildcards):
    method = getattr(wildcards, "method", None) or wildcards.lora_method
    return as_json(config["methods"][method])


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
    """Drift tables, weight analyses and per-task drift plots of every run, for the comparison."""
    return {
        "drift": [f"results/drift/{m}/{t}/seed{s}.parquet" for m, t, s in runs],
        "weights": [f"results/weights/{m}/{t}/seed{s}.json" for m, t, s in runs],
        "drift_plots": [f"results/plots/drift/{t}_final_cka_by_layer.png" for t in TASKS],
    }
