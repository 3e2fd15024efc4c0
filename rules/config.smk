# The config: validated once against the package's JSON Schema (which fills every default), then the
# names the other rule files use. Included first by the Snakefile.
import json
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

# Jobs import the tunetrace library of *this* checkout, whatever else is installed.
PKG_DIR = str(Path(workflow.basedir) / "pkg")
sys.path.insert(0, PKG_DIR)
# (PYTHONPATH is extended, not required, so it is no `envvars:` of the workflow.)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (PKG_DIR, os.environ.get("PYTHONPATH")) if p))

from tunetrace.config import ConfigError, check_data_files, validate_config
from tunetrace.models.names import ModelError, check_model_name

ENV_FILE = "../envs/tunetrace.yaml"

try:
    config.update(validate_config(config))  # defaults filled from the schema, semantic checks included
    check_data_files(config)
    check_model_name(config["model"]["name_or_path"])  # a local model directory must exist (torch-free)
except (ConfigError, ModelError) as err:
    raise WorkflowError(f"tunetrace: {err}") from None

TASKS = sorted(config["tasks"])
METHODS = sorted(config["methods"])
LORA_METHODS = [m for m in METHODS if config["methods"][m]["type"] == "lora"]
SEEDS = sorted(config["seeds"])


wildcard_constraints:
    task="[A-Za-z][A-Za-z0-9_]*",
    method="[A-Za-z][A-Za-z0-9_]*",
    lora_method="|".join(LORA_METHODS) or "(?!)",
    seed=r"\d+",
