# The config: validated once against the package's JSON Schema (which fills every default), then the
# names the other rule files use. Included first by the Snakefile (which put this checkout's pkg/, PKG_DIR,
# first on sys.path).
import json
from pathlib import Path

from snakemake.exceptions import WorkflowError

from tunetrace.config import ConfigError, check_data_files, check_tracking, validate_config
from tunetrace.models.names import ModelError, check_model_name

ENV_FILE = "../envs/tunetrace.yaml"

try:
    config.update(validate_config(config))  # defaults filled from the schema, semantic checks included
    check_data_files(config)
    check_tracking(config)  # online W&B needs credentials: said now, not in the first training job
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
