"""The three seed studies in config/examples/: their architecture twins run end to end on a CPU (workflow tests),
and their real models' request tables in docs/scale.md match hand arithmetic from the real parameter counts."""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, Workflow
from tunetrace.cluster.requests import CHECKPOINT_STAGING_BYTES, markdown_table
from tunetrace.config import validate_config
from tunetrace.models.size import parameter_count

SEEDS = {
    "seed_llama2_7b_drift": "meta-llama/Llama-2-7b-hf",
    "seed_qwen2.5_14b_go_no_go": "Qwen/Qwen2.5-14B",
    "seed_gpt_oss_20b_bias_audit": "openai/gpt-oss-20b",
}
REAL_COUNTS = {
    "meta-llama/Llama-2-7b-hf": 6_738_415_616,
    "Qwen/Qwen2.5-14B": 14_770_033_664,
    "openai/gpt-oss-20b": 20_914_757_184,
}


def seed_config(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "config" / "examples" / f"{name}.yaml").read_text())


def request_table(name: str) -> str:
    """The request table of a seed study for its real model (what `tunetrace doctor` lists against a cluster), planned
    from the checkout as Snakemake plans it from its working directory: the training runtimes count the study's
    data files (data/examples/)."""
    config = validate_config(seed_config(name))
    with contextlib.chdir(REPO):
        return markdown_table(config, parameter_count(config["model"]["name_or_path"]))


def doc_table(name: str) -> str:
    """The table under `<!-- requests: name -->` in docs/scale.md."""
    text = (REPO / "docs" / "scale.md").read_text()
    match = re.search(rf"<!-- requests: {re.escape(name)} -->\n\n(\|.*?)\n\n", text + "\n\n", re.S)
    assert match, f"docs/scale.md has no request table for {name}"
    return match.group(1).strip()


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_docs_show_each_seed_request_table(name: str) -> None:
    """docs/scale.md holds the request table each seed study computes for its real model."""
    assert doc_table(name) == request_table(name), (
        f"docs/scale.md's table for {name} is stale: paste `python tests/test_seed_studies.py {name}`"
    )


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_training_request_is_the_hand_arithmetic(name: str) -> None:
    """train_run asks, per rank, the overhead plus two bf16 copies of the real weights (plus checkpoint staging for
    full runs), rounded up to 500 MB, with the method's GPUs, for the real parameter count (not the default 1B)."""
    config = validate_config(seed_config(name))
    parameters = REAL_COUNTS[SEEDS[name]]
    assert parameter_count(SEEDS[name]) == parameters
    table = request_table(name)
    for method, spec in config["methods"].items():
        row = _train_row(table, method)
        gpus = spec["resources"]["gpus"]
        staging = parameters * CHECKPOINT_STAGING_BYTES if spec["type"] == "full" else 0  # a full checkpoint
        mb = gpus * (config["resources"]["overhead_mb"] + 2 * parameters * 2 / 2**20) + staging / 2**20
        assert row[3] == f"{math.ceil(mb / 500) * 500} MB" and row[5] == str(gpus), (method, row)


@pytest.mark.workflow
@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seed_study_plans_offline_without_the_model(name: str, tmp_path) -> None:
    """`snakemake -n` plans each seed study with the hub offline and an empty cache, sizing train_run from the
    stored config.json (not the 1B default)."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "TUNETRACE_CACHE": str(tmp_path / "cache"),
    }
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "--workflow-profile",
        "none",
        "--cores",
        "1",
        "results/comparison.json",
        "--configfile",
        f"config/examples/{name}.yaml",
    ]
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    method = next(iter(validate_config(seed_config(name))["methods"]))
    expected = _train_row(request_table(name), method)[3].removesuffix(" MB")
    assert f"mem_mb={expected}" in proc.stdout


def _train_row(table: str, method: str) -> list[str]:
    return next(
        cells
        for line in table.splitlines()
        if (cells := [c.strip() for c in line.split("|")[1:-1]])[:2] == ["`train_run`", method]
    )


# --- the architecture twins, end to end ----------------------------------------------------------------------


def twin_study(name: str) -> dict[str, Any]:
    """The seed study on its twin at CPU size: same tasks, methods and LoRA targets; two steps, few rows, no GPUs."""
    config = seed_config(name)
    config["model"] = {"name_or_path": f"twin:{SEEDS[name]}", "dtype": "float32"}
    config["seeds"] = [0]
    for method in config["methods"].values():
        method.pop("epochs", None)
        method.update(
            {
                "max_steps": 2,
                "batch_size": 4,
                "gradient_accumulation_steps": 1,
                "logging_steps": 1,
                "precision": "fp32",
                "gradient_checkpointing": False,
                "deepspeed": None,
                "resources": {"gpus": 0, "cpus": 1},
            }
        )
        if method.get("gate"):  # the gate decides on the random twin, and the run goes on to prove every rule
            method["gate"].update(pilot_steps=2, enforce=False)
    for task in config["tasks"].values():
        task.update({"max_train_examples": 16, "max_eval_examples": 8, "max_length": 48})
        if task["type"] == "generative_classification":
            task["max_new_tokens"] = 2
    config["evaluation"]["bootstrap_samples"] = 0
    config["representations"] = {"probe_size": 8}
    return config


# Where each job that loads the model records the device it ran on: (files under results/, the key).
# evaluate_run's metrics say where train_run's final model computed the outputs they score.
DEVICE_RECORDS = {
    "evaluate_baseline": ("baseline/*/metrics.json", "placement"),
    "extract_base_representations": ("representations/base/*/step_000000/*.json", "placement"),
    "train_run": ("runs/*/*/seed0/run.json", "device"),
    "evaluate_run": ("eval/*/*/seed0/metrics.json", "placement"),
    "merge_adapter": ("merged/*/*/seed0/merge.json", "placement"),
    "verify_merge": ("merge_checks/*/*/seed0.json", "placement"),
    "validate_run": ("weights/*/*/seed0.json", "placement"),
    "pilot_run": ("pilots/*/*/seed0/run.json", "device"),
}


def recorded_devices(root: Path, gated: bool) -> dict[str, set[str]]:
    """Each model job's recorded devices, by rule: every output file of the rule holds one (asserted here)."""
    found: dict[str, set[str]] = {}
    for rule, (pattern, key) in DEVICE_RECORDS.items():
        if rule == "pilot_run" and not gated:
            continue
        files = sorted((root / "results").glob(pattern))
        assert files, f"{rule}: no output matches results/{pattern}"
        for file in files:
            record = json.loads(file.read_text())
            assert record.get(key), f"{file}: {rule} recorded no {key}"
            value = record[key]
            found.setdefault(rule, set()).update(value["devices"] if isinstance(value, dict) else [value])
    return found


def run_twin(make_workflow, name: str, tasks: list[str] | None = None) -> tuple[dict[str, Any], Any]:
    """Run the twin study to its comparison; every job that loaded the model says it ran on the CPU (no GPUs)."""
    config = twin_study(name)
    config["tasks"] = {k: v for k, v in config["tasks"].items() if tasks is None or k in tasks}
    flow: Workflow = make_workflow(config)
    shutil.copytree(REPO / "data" / "examples", flow.root / "data" / "examples")
    flow.run("results/comparison.json")
    gated = any(m.get("gate", {}).get("enabled") for m in config["methods"].values())
    devices = recorded_devices(flow.root, gated)
    assert all(d == {"cpu"} or all(v.startswith("cpu") for v in d) for d in devices.values()), devices
    return json.loads((flow.root / "results" / "comparison.json").read_text()), flow.root


@pytest.mark.workflow
@pytest.mark.usefixtures("tiny_decoder_cache")
def test_llama2_7b_twin_runs_the_drift_study(make_workflow) -> None:
    """Llama-2-7B's twin: full and LoRA (q/k/v/o) train, merge, pass the merge check, and drift is measured."""
    doc, _ = run_twin(make_workflow, "seed_llama2_7b_drift", ["pairs"])
    task = doc["tasks"]["pairs"]
    assert set(task["methods"]) == {"full", "lora_r16"}
    assert task["methods"]["lora_r16"]["merge_check"]["passed"]
    assert task["drift"]["final_step"]


@pytest.mark.workflow
@pytest.mark.usefixtures("tiny_decoder_cache")
def test_qwen2_5_14b_twin_runs_the_gated_study(make_workflow) -> None:
    """Qwen2.5-14B's twin: the pilot and GO/NO-GO gate decide, then LoRA on all projections trains and merges."""
    doc, root = run_twin(make_workflow, "seed_qwen2.5_14b_go_no_go")
    method = doc["tasks"]["opinions"]["methods"]["lora_r16"]
    gate = json.loads((root / "results" / "gates" / "lora_r16" / "opinions" / "seed0.json").read_text())
    assert gate["decision"] in ("GO", "NO-GO")
    assert "wasserstein" in method["metrics"] and method["merge_check"]["passed"]


@pytest.mark.workflow
@pytest.mark.usefixtures("tiny_decoder_cache")
def test_gpt_oss_20b_twin_runs_the_bias_audit(make_workflow) -> None:
    """gpt-oss-20b's MXFP4 twin: LoRA on attention and expert parameters trains, merges against the dequantised
    base (said in the merge record) and the per-group audit is reported."""
    doc, root = run_twin(make_workflow, "seed_gpt_oss_20b_bias_audit")
    task = doc["tasks"]["toxicity"]
    assert task["methods"]["lora_r8"]["merge_check"]["passed"]
    assert "fpr" in json.dumps(task["methods"]["lora_r8"]) and "fpr" in json.dumps(task["baseline"])
    merge = json.loads((root / "results" / "merged" / "lora_r8" / "toxicity" / "seed0" / "merge.json").read_text())
    assert "dequantised" in merge["quantization"]


if __name__ == "__main__":
    import sys

    print(request_table(sys.argv[1]))
