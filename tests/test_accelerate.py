"""The multi-process training path: `accelerate launch` with 2 CPU processes (gloo), and DeepSpeed ZeRO-2 and
ZeRO-3 on CPU (DeepSpeed's CPU accelerator, gloo)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import REPO, write_sentiment_csv
from scale_helpers import load_weights, loss_curve, make_tiny_bert, max_weight_difference, tiny_bert_config
from tunetrace.config import MethodSpec, TaskSpec, validate_config
from tunetrace.stages.prepare import prepare_task_data
from tunetrace.training import checkpoints as C
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
@pytest.mark.skipif(not torch.cuda.is_available(), reason="a GPU test; ZeRO on CPU is tested below")
@pytest.mark.skipif(importlib.util.find_spec("deepspeed") is None, reason="deepspeed not installed (make setup)")
@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_deepspeed_stage_trains_on_one_gpu(tmp_path: Path, stage: str) -> None:
    """A ZeRO stage trains the tiny model on one GPU and writes one final model."""
    config = validate_config(tiny_bert_config(make_tiny_bert(tmp_path / "bert"), steps=4))
    config["methods"]["full"].update(deepspeed=stage, precision="bf16", resources={"gpus": 1})
    run_dir = _train(tmp_path, config)
    assert json.loads((run_dir / "run.json").read_text())["world_size"] == 1


def _job(root: Path, config: dict, **extra: Any) -> TrainingJob:
    write_sentiment_csv(root / "data" / "train.csv", 48, seed=1)
    write_sentiment_csv(root / "data" / "eval.csv", 24, seed=2)
    task = config["tasks"]["tiny"]
    task["source"] = {**task["source"], "train": str(root / "data/train.csv"), "eval": str(root / "data/eval.csv")}
    prepare_task_data(TaskSpec.from_dict("tiny", task), root / "prepared")
    return TrainingJob(
        model=config["model"],
        task_name="tiny",
        task=task,
        method_name="full",
        method=config["methods"]["full"],
        seed=0,
        data_dir=str(root / "prepared"),
        run_dir=str(root / "runs" / "full"),
        resume_dir=str(root / "state"),
        **extra,
    )


def _train(root: Path, config: dict) -> Path:
    job = _job(root, config)
    run_training(job, threads=2)
    return Path(job.run_dir)


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


# --- DeepSpeed ZeRO on CPU: DeepSpeed's CPU accelerator joins 2 ranks over gloo (DS_ACCELERATOR=cpu) ---
needs_deepspeed = pytest.mark.skipif(
    importlib.util.find_spec("deepspeed") is None, reason="deepspeed not installed (make setup installs it)"
)


def _zero_config(model_dir: Path, stage: str | None) -> dict:
    config = validate_config(tiny_bert_config(model_dir, steps=6, save_every=3))
    config["methods"]["full"].update(processes=2, deepspeed=stage)  # after validation: ZeRO on CPU is for tests
    return config


@pytest.fixture(scope="module")
def zero_runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Run directories of the tiny BERT trained by 2 CPU ranks: plain DDP ('ddp'), 'zero2', 'zero3' (each
    trained once per module, on first use)."""
    root = tmp_path_factory.mktemp("zero")
    model_dir = make_tiny_bert(root / "bert")
    runs: dict[str, Path] = {}

    def run(stage: str) -> Path:
        if stage not in runs:
            config = _zero_config(model_dir, None if stage == "ddp" else stage)
            reps = {**config["representations"], "every_steps": 3, "probe_size": 8, "capture_step0": True}
            job = _job(root / stage, config, representations=reps, reps_dir=str(root / stage / "reps"))
            run_training(job, threads=2)
            runs[stage] = Path(job.run_dir)
        return runs[stage]

    return run


@needs_deepspeed
@pytest.mark.workflow
@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_zero_stage_on_cpu_trains_like_ddp(zero_runs: Callable[[str], Path], stage: str) -> None:
    """ZeRO-2 and ZeRO-3 over 2 gloo ranks give plain DDP's loss at every step (within 1e-5) and a final model
    that plain `from_pretrained` loads, equal to DDP's weights within 1e-5; under ZeRO-3 each rank held
    half the model from its creation on (sharded at load, not after)."""
    from transformers import AutoModelForSequenceClassification

    ddp, run = zero_runs("ddp"), zero_runs(stage)
    curve, reference = loss_curve(run / "train_log.jsonl"), loss_curve(ddp / "train_log.jsonl")
    assert [s for s, _ in curve] == [1, 2, 3, 4, 5, 6] == [s for s, _ in reference]
    assert max(abs(a - b) for (_, a), (_, b) in zip(curve, reference, strict=True)) < 1e-5
    model = AutoModelForSequenceClassification.from_pretrained(run / "final")
    trained = {k: v for k, v in model.state_dict().items() if k in load_weights(ddp / "final")}
    assert max_weight_difference(trained, load_weights(ddp / "final")) < 1e-5
    sharding = json.loads((run / "run.json").read_text())["deepspeed"]
    assert sharding["stage"] == stage and sharding["parameters"] == sum(p.numel() for p in model.parameters())
    if stage == "zero3":
        assert sharding["sharded_at_load"] and sharding["rank0_parameters_at_load"] <= sharding["parameters"] // 2 + 64
    else:
        assert not sharding["sharded_at_load"] and sharding["rank0_parameters_at_load"] == sharding["parameters"]


@needs_deepspeed
@pytest.mark.workflow
def test_zero3_ranks_capture_representations_together(zero_runs: Callable[[str], Path]) -> None:
    """Under ZeRO-3 every rank joins the probe forward (each holds a shard of every layer) and rank 0
    writes steps 0, 3 and 6, equal to DDP's captures within 1e-5 (no rank waits forever for the others)."""
    from safetensors.torch import load_file

    from tunetrace.analysis.steps import TENSOR_KEY

    ddp, zero3 = (zero_runs(stage).parents[1] / "reps" for stage in ("ddp", "zero3"))
    steps = sorted(p.name for p in zero3.iterdir())
    assert steps == ["step_000000", "step_000003", "step_000006"] == sorted(p.name for p in ddp.iterdir())
    for step in steps:
        for layer in sorted((ddp / step).glob("layer_*.safetensors")):
            a, b = load_file(str(layer))[TENSOR_KEY], load_file(str(zero3 / step / layer.name))[TENSOR_KEY]
            assert float((a - b).abs().max()) < 1e-5, (step, layer.name)


@needs_deepspeed
@pytest.mark.workflow
def test_zero3_final_model_is_the_gathered_training_state(zero_runs: Callable[[str], Path]) -> None:
    """ZeRO-3's final model (saved gathered), loaded with plain `from_pretrained`, equals bitwise the fp32
    weights DeepSpeed's zero_to_fp32 consolidates from the ranks' shards of the last checkpoint."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint
    from transformers import AutoModelForSequenceClassification

    run = zero_runs("zero3")
    shards = {
        k: v.detach()
        for k, v in get_fp32_state_dict_from_zero_checkpoint(str(run / "checkpoints" / "checkpoint-6")).items()
    }
    final = AutoModelForSequenceClassification.from_pretrained(run / "final").state_dict()
    assert set(shards) <= set(final) and len(shards) == 41  # every trainable tensor of the tiny BERT
    assert max_weight_difference({k: final[k] for k in shards}, shards) == 0.0


@needs_deepspeed
@pytest.mark.workflow
def test_zero3_resumes_after_a_kill(zero_runs: Callable[[str], Path], tmp_path: Path) -> None:
    """A ZeRO-3 run SIGKILLed after its step-3 checkpoint resumes from it (sharded optimizer state included)
    and ends with the uninterrupted run's weights and losses (within 1e-6)."""
    uninterrupted = zero_runs("zero3")
    job = _job(tmp_path, _zero_config(make_tiny_bert(tmp_path / "bert"), "zero3"))
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(dataclasses.asdict(job)))
    code = (
        "import json, sys; from tunetrace.training.launch import TrainingJob, run_training; "
        "run_training(TrainingJob(**json.load(open(sys.argv[1]))), threads=2)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "pkg")}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(job_file)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    marker = Path(job.resume_dir) / "checkpoint-3" / C.COMPLETE_MARKER
    deadline = time.monotonic() + 240
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the job; its launcher and ranks die with it (parent-death signal)
    proc.wait()
    assert marker.exists() and not (Path(job.run_dir) / "run.json").exists()

    run_training(job, threads=2)
    run = Path(job.run_dir)
    assert json.loads((run / "run.json").read_text())["resumed_from_step"] == 3
    assert max_weight_difference(load_weights(run / "final"), load_weights(uninterrupted / "final")) < 1e-6
    resumed, reference = loss_curve(run / "train_log.jsonl"), loss_curve(uninterrupted / "train_log.jsonl")
    assert [s for s, _ in resumed] == [s for s, _ in reference]
    assert max(abs(a - b) for (_, a), (_, b) in zip(resumed, reference, strict=True)) < 1e-6


# --- the pilot of a gate and the smoke test go through the same launcher as train_run ---


def _two_rank_job(root: Path, steps: int = 6, save_every: int = 3) -> TrainingJob:
    config = validate_config(tiny_bert_config(make_tiny_bert(root / "bert"), steps=steps, save_every=save_every))
    config["methods"]["full"]["processes"] = 2
    return dataclasses.replace(_job(root, config), run_dir=str(root / "pilot"), resume_dir=None)


@pytest.mark.workflow
def test_pilot_of_two_cpu_ranks_gives_metrics_the_gate_reads(tmp_path: Path) -> None:
    """A pilot launched on 2 gloo ranks writes one run.json of world size 2 and the metrics file a one-process
    pilot writes (same keys), and evaluate_gate decides on it."""
    from tunetrace.config import EvalSpec
    from tunetrace.guard.gates import GateSpec
    from tunetrace.stages.gate import evaluate_gate
    from tunetrace.stages.pilot import run_pilot

    gate, spec = GateSpec.from_dict({"enabled": True, "pilot_steps": 4}), EvalSpec.from_dict({"bootstrap_samples": 0})
    job = _two_rank_job(tmp_path)
    metrics = run_pilot(job, gate, spec, threads=2)
    single = dataclasses.replace(job, method={**job.method, "processes": None}, run_dir=str(tmp_path / "single"))
    assert set(metrics) == set(run_pilot(single, gate, spec, threads=2))
    run = json.loads((Path(job.run_dir) / "run.json").read_text())
    assert run["world_size"] == 2 and run["global_steps"] == 4
    assert not (Path(job.run_dir) / "final").exists() and not (Path(job.run_dir) / "launch_job.json").exists()
    baseline = tmp_path / "baseline.json"
    baseline.write_text(
        json.dumps(
            {
                "primary_metric": metrics["primary_metric"],
                "reference": "majority",
                "higher_is_better": True,
                "baselines": {"majority": {"primary": 0.0}},
            }
        )
    )
    decision = evaluate_gate(
        gate, Path(job.run_dir) / "metrics.json", Path(job.run_dir) / "run.json", baseline, tmp_path / "gate.json"
    )
    assert decision["pilot"] == {"value": metrics["primary"], "steps": 4}


@pytest.mark.workflow
def test_smoke_test_of_two_cpu_ranks_passes(tmp_path: Path) -> None:
    """The smoke test launched on 2 gloo ranks trains, reloads each checkpoint, resumes from the middle one (again
    on 2 ranks) and passes."""
    from tunetrace.config import ValidationSpec
    from tunetrace.stages.smoke import run_smoke

    spec = ValidationSpec.from_dict({"smoke_steps": 6, "smoke_save_every_steps": 3})
    report = run_smoke(_two_rank_job(tmp_path), spec, tmp_path / "work", tmp_path / "smoke.json", threads=2)
    assert report["passed"] and report["world_size"] == 2 and len(report["checkpoints"]) == 2
    assert report["resumed_last_loss"] is not None and json.loads((tmp_path / "smoke.json").read_text())["passed"]
