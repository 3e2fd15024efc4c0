"""The multi-process training path: `accelerate launch` with 2 CPU processes (gloo), DeepSpeed configs."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from conftest import write_sentiment_csv
from scale_helpers import make_tiny_bert, tiny_bert_config
from tunetrace.config import MethodSpec, TaskSpec, validate_config
from tunetrace.data.prepare import prepare_task_data
from tunetrace.training.launch import DEEPSPEED_DIR, TrainingJob, launch_command, needs_launcher, run_training


def test_one_process_trains_in_place() -> None:
    """A method without extra processes, GPUs or DeepSpeed needs no launcher."""
    assert not needs_launcher(MethodSpec.from_dict("full", {"type": "full"}))
    assert needs_launcher(MethodSpec.from_dict("full", {"type": "full", "resources": {"gpus": 4}}))


def test_launch_command_has_one_process_per_gpu_and_the_method_precision(tmp_path: Path) -> None:
    """Processes default to the method's GPU count; mixed precision follows `precision`."""
    method = MethodSpec.from_dict("big", {"type": "lora", "precision": "bf16", "resources": {"gpus": 4}})
    cmd = launch_command(method, tmp_path / "job.json", threads=8)
    assert cmd[cmd.index("--num_processes") + 1] == "4"
    assert cmd[cmd.index("--mixed_precision") + 1] == "bf16"
    assert cmd[-3:] == ["-m", "tunetrace.training.launch", str(tmp_path / "job.json")]


@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_deepspeed_configs_exist_per_stage(stage: str) -> None:
    """Each ZeRO stage the schema allows has a config whose stage matches its name."""
    config = json.loads((DEEPSPEED_DIR / f"{stage}.json").read_text())
    assert config["zero_optimization"]["stage"] == int(stage[-1])


def test_deepspeed_without_gpus_is_a_config_error(tmp_path: Path) -> None:
    """DeepSpeed on a method with no GPUs fails at validation, naming the key."""
    config = tiny_bert_config(tmp_path)
    config["methods"]["full"]["deepspeed"] = "zero3"
    with pytest.raises(ValueError, match="methods.full.deepspeed"):
        validate_config(config)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="DeepSpeed needs a CUDA GPU; none here")
@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed not installed (make deepspeed)")
@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_deepspeed_stage_trains_on_one_gpu(tmp_path: Path, stage: str) -> None:
    """A ZeRO stage trains the tiny model on one GPU and writes one final model."""
    config = validate_config(tiny_bert_config(make_tiny_bert(tmp_path / "bert"), steps=4))
    config["methods"]["full"].update(deepspeed=stage, precision="bf16", resources={"gpus": 1})
    run_dir = _train(tmp_path, config)
    assert json.loads((run_dir / "run.json").read_text())["world_size"] == 1


def _train(root: Path, config: dict) -> Path:
    write_sentiment_csv(root / "data" / "train.csv", 48, seed=1)
    write_sentiment_csv(root / "data" / "eval.csv", 24, seed=2)
    task = config["tasks"]["tiny"]
    task["source"] = {**task["source"], "train": str(root / "data/train.csv"), "eval": str(root / "data/eval.csv")}
    prepare_task_data(TaskSpec.from_dict("tiny", task), root / "prepared")
    run_dir = root / "runs" / "full"
    run_training(TrainingJob(model=config["model"], task_name="tiny", task=task, method_name="full",
                             method=config["methods"]["full"], seed=0, data_dir=str(root / "prepared"),
                             run_dir=str(run_dir), resume_dir=str(root / "state")), threads=2)
    return run_dir


@pytest.mark.workflow
def test_two_cpu_processes_train_one_run(tmp_path: Path) -> None:
    """2 gloo ranks train together; only the main rank writes the log, the model and run.json."""
    config = validate_config(tiny_bert_config(make_tiny_bert(tmp_path / "bert"), steps=6, save_every=3))
    config["methods"]["full"]["processes"] = 2
    run_dir = _train(tmp_path, config)

    metadata = json.loads((run_dir / "run.json").read_text())
    assert metadata["world_size"] == 2 and metadata["global_steps"] == 6
    records = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5, 6]  # one writer, no duplicates
    assert abs(records[0]["loss"] - math.log(2)) < 0.2  # not scaled by the number of ranks
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["checkpoint-3", "checkpoint-6"]
    assert (run_dir / "final" / "model.safetensors").is_file()
    assert not (run_dir / "launch_job.json").exists() and not (tmp_path / "state").exists()
