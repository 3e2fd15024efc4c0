"""Run a training job in this process or, for several processes or DeepSpeed, under `accelerate launch`.

The job's arguments travel as a JSON file (the same config slices the rule passes), so the launched
ranks rebuild exactly the typed objects the adapter would have; `python -m tunetrace.training.launch FILE`
is what each rank runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from tunetrace.config import MethodSpec, ModelSpec, TaskSpec
from tunetrace.fileio import write_json
from tunetrace.training import jobcontrol
from tunetrace.training.runlock import run_lock

log = logging.getLogger(__name__)

DEEPSPEED_DIR = Path(__file__).resolve().parents[3] / "config" / "deepspeed"
DEEPSPEED_CONFIGS = {"zero2": "zero2.json", "zero3": "zero3.json"}
MIXED_PRECISION = {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}
JOB_FILE = "launch_job.json"


@dataclasses.dataclass(frozen=True)
class TrainingJob:
    """Everything one training run needs; `slices` are the rule's canonical config slices."""

    model: dict[str, Any]
    task_name: str
    task: dict[str, Any]
    method_name: str
    method: dict[str, Any]
    seed: int
    data_dir: str
    run_dir: str
    resume_dir: str | None = None
    representations: dict[str, Any] | None = None
    reps_dir: str | None = None
    sizing: dict[str, Any] | None = None  # validation's sizing keys: the too-few-steps warning

    def specs(self) -> tuple[ModelSpec, TaskSpec, MethodSpec]:
        return (ModelSpec.from_dict(self.model), TaskSpec.from_dict(self.task_name, self.task),
                MethodSpec.from_dict(self.method_name, self.method))


def needs_launcher(method: MethodSpec) -> bool:
    """Several processes, or DeepSpeed (which needs a distributed launcher even on one GPU)."""
    return method.world_size > 1 or method.deepspeed is not None


def deepspeed_config(stage: str) -> Path:
    """The DeepSpeed JSON of a ZeRO stage, failing early when the stage or the package is missing."""
    if stage not in DEEPSPEED_CONFIGS:
        raise ValueError(f"methods.<name>.deepspeed: unknown stage '{stage}'; known: {sorted(DEEPSPEED_CONFIGS)}")
    try:
        import deepspeed  # noqa: F401
    except ImportError as err:
        raise RuntimeError("methods.<name>.deepspeed is set but the deepspeed package is missing: run "
                           "`make deepspeed` (pip install --no-build-isolation deepspeed)") from err
    return DEEPSPEED_DIR / DEEPSPEED_CONFIGS[stage]


def launch_command(method: MethodSpec, job_file: Path, threads: int) -> list[str]:
    """`accelerate launch` for the method: processes = world size, precision from the method."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch",
           "--num_processes", str(method.world_size), "--num_machines", "1",
           "--mixed_precision", MIXED_PRECISION[method.precision],
           "--num_cpu_threads_per_process", str(max(threads // method.world_size, 1)),
           "--main_process_port", str(_free_port())]
    if method.deepspeed:
        if not torch.cuda.is_available():
            raise RuntimeError(f"methods.{method.name}.deepspeed needs a CUDA GPU; none is visible in this job")
        cmd += ["--use_deepspeed", "--deepspeed_config_file", str(deepspeed_config(method.deepspeed))]
    elif method.world_size > 1:
        # accelerate's torchrun launcher; without CUDA, Trainer (use_cpu) joins the ranks with gloo.
        # (`--cpu` would route to accelerate's single-process/MPI launcher instead.)
        cmd.append("--multi_gpu")
    return [*cmd, "-m", "tunetrace.training.launch", str(job_file)]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_training(job: TrainingJob, threads: int = 1, log_sinks: Sequence[Any] = ()) -> None:
    """Train in this process, or under `accelerate launch` when the method asks for it.

    With a resume directory, this process holds the run's lock (`training.runlock`) for the whole
    run, launched ranks included: a second trainer of the same run stops before touching its state.
    `log_sinks` (e.g. the W&B logger) receive every train-log record in the in-process path; launched
    ranks cannot reach this process's objects, so there the train log file is the only record.
    """
    model, task, method = job.specs()
    with run_lock(job.resume_dir) if job.resume_dir else contextlib.nullcontext():
        if not needs_launcher(method):
            _train(job, log_sinks)
            return
        job_file = Path(job.run_dir) / JOB_FILE
        write_json(job_file, dataclasses.asdict(job))
        _launch(launch_command(method, job_file, threads), method.world_size)
        job_file.unlink()


def _launch(cmd: list[str], processes: int) -> None:
    """Run the launcher in its own process group: stop signals reach it through this process
    (jobcontrol passes them on), it gets SIGTERM if this process is killed, and whatever of it is
    left when this process stops waiting (an error, a signal) is killed with it."""
    log.info("launching %d processes: %s", processes, " ".join(cmd))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                                      os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=jobcontrol.child_preexec())
    jobcontrol.track_child(proc)
    try:
        code = proc.wait()
    finally:
        jobcontrol.untrack_child(proc)
        _kill_group(proc)
    jobcontrol.raise_if_stopped("in the launched processes")
    if code != 0:
        raise subprocess.CalledProcessError(code, cmd)


def _kill_group(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL, to what is left of a launched process group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)


def _main(job_file: str) -> None:
    """Entry point of each launched rank."""
    from tunetrace.logutil import setup_logging

    setup_logging()
    jobcontrol.run_as_job()  # dies with the launcher; stops at a step end on SIGTERM from it
    with open(job_file, encoding="utf-8") as handle:
        job = TrainingJob(**json.load(handle))
    _train(job)


def _train(job: TrainingJob, log_sinks: Sequence[Any] = ()) -> None:
    """One rank's training, representation capture included (built here so every rank has it)."""
    from tunetrace.analysis.steps import RepresentationSpec
    from tunetrace.guard.sizing import SizingSpec
    from tunetrace.training.loop import train_run

    model, task, method = job.specs()
    spec = RepresentationSpec.from_dict(job.representations) if job.representations else None
    train_run(model, task, method, job.seed, job.data_dir, job.run_dir, resume_dir=job.resume_dir,
              representations=spec if spec and spec.enabled and job.reps_dir else None, reps_dir=job.reps_dir,
              log_sinks=log_sinks, sizing=SizingSpec.from_dict(job.sizing) if job.sizing is not None else None)


if __name__ == "__main__":
    _main(sys.argv[1])
