"""Multi-node training: Slurm resources of the method, one launcher per node, and two CPU "nodes" on this machine."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, Workflow, tiny_config, write_sentiment_csv
from scale_helpers import load_weights, loss_curve, max_weight_difference
from tunetrace.config import MethodSpec, TaskSpec, validate_config
from tunetrace.fileio import write_json
from tunetrace.stages.prepare import prepare_task_data
from tunetrace.training import launch as L

TWO_NODES = {"type": "full", "resources": {"nodes": 2, "gpus": 8, "cpus": 16}}


def test_world_size_is_processes_per_node_times_nodes() -> None:
    """8 GPUs on each of 2 nodes are 16 ranks, 8 per node."""
    method = MethodSpec.from_dict("big", TWO_NODES)
    assert (method.nodes, method.processes_per_node, method.world_size) == (2, 8, 16)


@pytest.mark.parametrize(
    ("nodelist", "first"),
    [("gpu[07-08,11]", "gpu07"), ("node1,node2", "node1"), ("a-b[3-4],c1", "a-b3"), ("localhost", "localhost")],
)
def test_first_host_of_a_slurm_node_list(nodelist: str, first: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The main node is the first host of the allocation, read like `scontrol show hostnames | head -1`."""
    monkeypatch.setenv("PATH", "/nonexistent")  # the parser, not scontrol
    assert L.first_host(nodelist) == first


def test_node_rank_and_main_address_come_from_the_slurm_environment() -> None:
    """SLURM_PROCID (one task per node) gives the machine rank; the first node of the step's node list is the
    main address."""
    env = {"SLURM_NODEID": "1", "SLURM_PROCID": "1", "SLURM_JOB_NODELIST": "gpu[07-08]", "SLURM_JOB_ID": "42"}
    machine = L.slurm_machine(MethodSpec.from_dict("big", TWO_NODES), 29400, env)
    assert machine == L.Machine(rank=1, count=2, main_ip="gpu07", port=29400)


def test_node_launcher_outside_srun_names_the_key() -> None:
    """Without the Slurm task environment the node launcher stops, naming the config key."""
    with pytest.raises(RuntimeError, match=r"methods\.big\.resources\.nodes"):
        L.slurm_machine(MethodSpec.from_dict("big", TWO_NODES), 29400, {})


def test_slurm_node_lists_expand_like_scontrol(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ranges keep their zero padding; names without brackets stand for themselves."""
    monkeypatch.setenv("PATH", "/nonexistent")
    assert L.slurm_hosts("gpu[07-08,11],cpu1") == ["gpu07", "gpu08", "gpu11", "cpu1"]


# Inside the job step that runs the rule (srun -n1) Slurm sets SLURM_NNODES=1 (the step's) and no
# SLURM_JOB_NUM_NODES (seen on the one-node test cluster): the job's nodes are its node list's.
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "outside Slurm"),
        ({"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "vm", "SLURM_NNODES": "2"}, "has 1 node"),
    ],
)
def test_multi_node_method_needs_a_slurm_job_of_that_many_nodes(
    env: dict, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 2-node method stops before launching outside Slurm or in a 1-node job, naming the key."""
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match=rf"methods\.big\.resources\.nodes.*{message}"):
        L.check_allocation(MethodSpec.from_dict("big", TWO_NODES), env)
    L.check_allocation(
        MethodSpec.from_dict("big", TWO_NODES), {**env, "SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "gpu[07-08]"}
    )


def test_node_launch_command_has_the_machine_rank_and_main_address(tmp_path: Path) -> None:
    """Each node's `accelerate launch` counts all ranks, names its own rank and the main node;
    DeepSpeed on several nodes uses the standard (torchrun) launcher, not pdsh."""
    method = MethodSpec.from_dict("big", {**TWO_NODES, "deepspeed": "zero3"})
    cmd = L.launch_command(method, tmp_path / "job.json", 16, L.Machine(1, 2, "gpu07", 29400))
    flags = dict(zip(cmd, cmd[1:], strict=False))
    assert flags["--num_processes"] == "16" and flags["--num_machines"] == "2"
    assert flags["--machine_rank"] == "1" and flags["--main_process_ip"] == "gpu07"
    assert flags["--main_process_port"] == "29400" and flags["--num_cpu_threads_per_process"] == "2"
    assert flags["--deepspeed_multinode_launcher"] == "standard" and flags["--zero3_init_flag"] == "true"


def test_srun_starts_one_launcher_per_node(tmp_path: Path) -> None:
    """srun runs one task per node, sharing the job step's CPUs, and kills all when one fails."""
    env = {"SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "gpu[07-08]"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        cmd = L.srun_command(MethodSpec.from_dict("big", TWO_NODES), tmp_path / "job.json", 16, 29400)
    assert cmd[0] == "srun" and {
        "--overlap",
        "--nodes=2",
        "--ntasks=2",
        "--ntasks-per-node=1",
        "--kill-on-bad-exit=1",
        "--cpus-per-task=16",
    } <= set(cmd)
    assert cmd[cmd.index("--node") + 1] == str(tmp_path / "job.json") and cmd[cmd.index("--port") + 1] == "29400"


def test_each_rank_checks_the_gpus_it_sees(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CUDA rank seeing fewer GPUs than requested stops naming resources.gpus; CPU methods skip the check."""
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    with pytest.raises(RuntimeError, match=r"methods\.big\.resources\.gpus asks for 8 GPU\(s\) per node.*sees 4"):
        L.check_visible_gpus(MethodSpec.from_dict("big", TWO_NODES))
    L.check_visible_gpus(MethodSpec.from_dict("big", {"type": "full", "resources": {"gpus": 4}}))
    L.check_visible_gpus(MethodSpec.from_dict("cpu", {"type": "full"}))


def test_cpu_only_torch_warns_instead_of_failing(monkeypatch: pytest.MonkeyPatch, caplog) -> None:  # type: ignore[no-untyped-def]
    """A CPU-only torch build sees no GPU whatever the node has: the check logs a warning naming the key."""
    monkeypatch.setattr(torch.version, "cuda", None)
    L.check_visible_gpus(MethodSpec.from_dict("big", TWO_NODES))
    assert "methods.big.resources.gpus" in caplog.text and "CPU-only" in caplog.text


def _tiny_bert_without_dropout(path: Path) -> Path:
    """A random 2-layer BERT with dropout off, so one process and two ranks compute the same function."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from tunetrace.models.names import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("embedded:all-MiniLM-L6-v2"))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    BertModel(config).save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def _job(root: Path, model_dir: Path, name: str, method: dict) -> L.TrainingJob:
    config = validate_config(
        {
            "model": {"name_or_path": str(model_dir)},
            "tasks": {
                "tiny": {
                    "source": {"train": str(root / "data/train.csv"), "eval": str(root / "data/eval.csv")},
                    "labels": ["negative", "positive"],
                    "group_field": "domain",
                    "id_field": "id",
                    "max_length": 32,
                }
            },
            "methods": {
                name: {
                    "type": "full",
                    "learning_rate": 1e-3,
                    "max_steps": 6,
                    "save_every_steps": 3,
                    "logging_steps": 1,
                    "warmup_ratio": 0.1,
                    **method,
                }
            },
            "seeds": [0],
            "tracking": {"wandb_mode": "disabled"},
        }
    )
    return L.TrainingJob(
        model=config["model"],
        task_name="tiny",
        task=config["tasks"]["tiny"],
        method_name=name,
        method=config["methods"][name],
        seed=0,
        data_dir=str(root / "prepared"),
        run_dir=str(root / "runs" / name),
        resume_dir=str(root / "state" / name),
    )


@pytest.mark.workflow
def test_two_cpu_nodes_equal_one_process(tmp_path: Path) -> None:
    """Two "nodes" (two node launchers started as two srun tasks would be, with their SLURM_* variables,
    over gloo on 127.0.0.1, batch 4 each) train the run one process trains with batch 8: the same loss
    at every step and the same final weights, within 1e-5 (float32 all-reduce order)."""
    write_sentiment_csv(tmp_path / "data" / "train.csv", 48, seed=1)
    write_sentiment_csv(tmp_path / "data" / "eval.csv", 24, seed=2)
    model_dir = _tiny_bert_without_dropout(tmp_path / "bert")
    single = _job(tmp_path, model_dir, "single", {"batch_size": 8})
    prepare_task_data(TaskSpec.from_dict("tiny", single.task), tmp_path / "prepared")
    L.run_training(single, threads=1)

    nodes = _job(tmp_path, model_dir, "nodes", {"batch_size": 4, "resources": {"nodes": 2, "cpus": 1}})
    job_file = Path(nodes.run_dir) / L.JOB_FILE
    job_file.parent.mkdir(parents=True)
    write_json(job_file, dataclasses.asdict(nodes))
    port = L._free_port()
    base = {
        **os.environ,
        "PYTHONPATH": str(REPO / "pkg"),
        "SLURM_JOB_ID": "4242",
        "SLURM_NNODES": "2",
        "SLURM_JOB_NODELIST": "localhost",
        "SLURM_STEP_NODELIST": "localhost",
        "SLURM_NTASKS": "2",
    }
    launchers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tunetrace.training.launch",
                "--node",
                str(job_file),
                "--port",
                str(port),
                "--threads",
                "1",
            ],
            env={**base, "SLURM_NODEID": str(rank), "SLURM_PROCID": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [proc.communicate(timeout=300)[0] for proc in launchers]
    assert [proc.returncode for proc in launchers] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "--machine_rank 1" in outputs[1] and "--num_machines 2" in outputs[0]

    one, two = (Path(job.run_dir) for job in (single, nodes))
    curve_one, curve_two = loss_curve(one / "train_log.jsonl"), loss_curve(two / "train_log.jsonl")
    assert [s for s, _ in curve_two] == [1, 2, 3, 4, 5, 6] == [s for s, _ in curve_one]
    assert max(abs(a - b) for (_, a), (_, b) in zip(curve_one, curve_two, strict=True)) < 1e-5
    assert max_weight_difference(load_weights(one / "final"), load_weights(two / "final")) < 1e-5


def _train_resources(flow: Workflow, method: str) -> dict[str, str]:
    """train_run's resources for `method`, as a dry run of the real workflow resolves them."""
    proc = flow.run("--dry-run", f"results/runs/{method}/tiny/seed0/run.json")
    lines = (proc.stdout + proc.stderr).splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "rule train_run:":
            block = next(x for x in lines[i:] if x.strip().startswith("resources:"))
            return dict(item.split("=", 1) for item in block.split(":", 1)[1].strip().split(", "))
    raise AssertionError("no train_run job in the dry run:\n" + "\n".join(lines[-40:]))


@pytest.mark.workflow
def test_multi_node_methods_become_per_node_slurm_requests(make_workflow) -> None:  # type: ignore[no-untyped-def]
    """The Slurm executor's own submit code turns a 2-node x 4-GPU method into --nodes=2 --gres=gpu:4 and
    --cpus-per-gpu (no job-wide --gpus, no --ntasks-per-gpu), and a 2-node CPU method into one task per node."""
    from types import SimpleNamespace

    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    config = tiny_config()
    config["methods"]["full"]["resources"] = {"nodes": 2, "gpus": 4, "cpus": 8}
    config["methods"]["lora_r4"]["resources"] = {"nodes": 2, "cpus": 3}
    flow = make_workflow(config)

    class Resources(dict):
        __getattr__ = dict.__getitem__

    params = {"run_uuid": "u", "slurm_logfile": "l", "comment_str": "c", "account": "", "partition": "", "workdir": ""}
    flags = {}
    for method, threads in (("full", 8), ("lora_r4", 3)):
        resolved = {k: int(v) if v.isdigit() else v for k, v in _train_resources(flow, method).items()}
        job = SimpleNamespace(resources=Resources(resolved), threads=threads)
        flags[method] = (get_submit_command(job, params) + set_gres_string(job)).split()
    assert {"--nodes=2", "--cpus-per-gpu=2", "--gres=gpu:4"} <= set(flags["full"])
    assert not any(f.startswith(("--gpus", "--ntasks")) for f in flags["full"])
    assert {"--nodes=2", "--ntasks=2", "--cpus-per-task=3"} <= set(flags["lora_r4"])
    assert not any("gpu" in f for f in flags["lora_r4"])
