"""Run a training job in this process or, for several processes or DeepSpeed, under `accelerate launch`;
across several nodes, one `accelerate launch` per node started by `srun`.

The job's arguments travel as a JSON file (the same config slices the rule passes), so the launched
ranks rebuild exactly the typed objects the adapter would have; `python -m tunetrace.training.launch FILE`
is what each rank runs, and `python -m tunetrace.training.launch --node FILE --port P --threads T` is
what `srun` runs once per node (machine rank from SLURM_PROCID, main address the allocation's first node).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from tunetrace.artifacts import RUN_METADATA
from tunetrace.config import MethodSpec, ModelSpec, TaskSpec, TrackingSpec
from tunetrace.fileio import write_json
from tunetrace.training import jobcontrol
from tunetrace.training.runlock import run_lock

log = logging.getLogger(__name__)

# shipped with the package (package data), so an installed tunetrace finds them without a checkout
DEEPSPEED_DIR = Path(__file__).resolve().parent / "deepspeed"
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
    tracking: dict[str, Any] | None = None  # the tracking slice: rank 0 of the run owns its W&B run
    resume_from_checkpoint: str | None = None  # a checkpoint to start from (the smoke test's resume check)

    @classmethod
    def of_rule(cls, job: Any, run_dir: str | os.PathLike, seed: int | None = None, **settings: Any) -> TrainingJob:
        """The job of a training rule (train_run, the pilot, the smoke test: they train the same way) from its
        workflow job (tunetrace.jobcontext.Job): its model, task and method slices and prepared data; `settings`
        are the rule's own fields."""
        return cls(
            model=job.param("model"),
            task_name=job.wildcards.task,
            task=job.param("task"),
            method_name=job.wildcards.method,
            method=job.param("method"),
            seed=job.seed if seed is None else seed,
            data_dir=str(Path(job.input.train).parent),
            run_dir=str(run_dir),
            **settings,
        )

    def specs(self) -> tuple[ModelSpec, TaskSpec, MethodSpec]:
        return (
            ModelSpec.from_dict(self.model),
            TaskSpec.from_dict(self.task_name, self.task),
            MethodSpec.from_dict(self.method_name, self.method),
        )


# MethodSpec fields that are not keys of the method's config slice
_DERIVED_METHOD_FIELDS = ("name", "lora", "gpus", "nodes")


def method_slice(method: MethodSpec, data: Mapping[str, Any]) -> dict[str, Any]:
    """The method's config slice `data` with the scalar keys of `method` (a pilot or smoke cut of it, made by
    replacing those keys), so the launched ranks train the cut method."""
    keys = [f.name for f in dataclasses.fields(method) if f.name not in _DERIVED_METHOD_FIELDS]
    return {**data, **{key: getattr(method, key) for key in keys}}


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
        raise RuntimeError(
            "methods.<name>.deepspeed is set but the deepspeed package is missing: run "
            "`make deepspeed` (pip install --no-build-isolation deepspeed)"
        ) from err
    return DEEPSPEED_DIR / DEEPSPEED_CONFIGS[stage]


@dataclasses.dataclass(frozen=True)
class Machine:
    """This node's place in a multi-node run: its rank, the node count and the main process's address."""

    rank: int
    count: int
    main_ip: str
    port: int


def launch_command(method: MethodSpec, job_file: Path, threads: int, machine: Machine | None = None) -> list[str]:
    """`accelerate launch` for the method on one node: processes = world size (all nodes), precision from
    the method; with `machine`, this node's rank and the main node's address and port."""
    machine = machine or Machine(0, 1, "127.0.0.1", _free_port())
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        str(method.world_size),
        "--num_machines",
        str(machine.count),
        "--mixed_precision",
        MIXED_PRECISION[method.precision],
        "--num_cpu_threads_per_process",
        str(max(threads // method.processes_per_node, 1)),
        "--main_process_port",
        str(machine.port),
    ]
    if machine.count > 1:
        cmd += ["--machine_rank", str(machine.rank), "--main_process_ip", machine.main_ip]
    if method.deepspeed:
        # Without CUDA, DeepSpeed's CPU accelerator (DS_ACCELERATOR=cpu, set by _launch) joins the ranks with gloo.
        cmd += ["--use_deepspeed", "--deepspeed_config_file", str(deepspeed_config(method.deepspeed))]
        if method.deepspeed == "zero3":
            cmd += ["--zero3_init_flag", "true"]
        if machine.count > 1:  # accelerate's default multi-node DeepSpeed launcher is pdsh; srun starts each node
            cmd += ["--deepspeed_multinode_launcher", "standard"]
    elif method.world_size > 1:
        # accelerate's torchrun launcher; without CUDA, Trainer (use_cpu) joins the ranks with gloo.
        # (`--cpu` would route to accelerate's single-process/MPI launcher instead.)
        cmd.append("--multi_gpu")
    return [*cmd, "-m", "tunetrace.training.launch", str(job_file)]


def srun_command(method: MethodSpec, job_file: Path, threads: int, port: int) -> list[str]:
    """`srun` starting one node launcher (`--node`) on each of the method's nodes of this Slurm job.

    `--overlap`: the job itself runs in a step that holds this node's CPUs, and the launchers' step
    must share them or it would wait for them forever."""
    check_allocation(method)
    return [
        "srun",
        "--overlap",
        f"--nodes={method.nodes}",
        f"--ntasks={method.nodes}",
        "--ntasks-per-node=1",
        f"--cpus-per-task={threads}",
        "--kill-on-bad-exit=1",
        sys.executable,
        "-m",
        "tunetrace.training.launch",
        "--node",
        str(job_file),
        "--port",
        str(port),
        "--threads",
        str(threads),
    ]


def check_allocation(method: MethodSpec, env: Mapping[str, str] | None = None) -> None:
    """A multi-node method must run in a Slurm job of at least that many nodes; stop before any launch.

    The job's nodes are counted from SLURM_JOB_NODELIST: inside the job step that runs the rule (`srun -n1`),
    SLURM_NNODES is the step's one node and SLURM_JOB_NUM_NODES is not set."""
    env = os.environ if env is None else env
    key = f"methods.{method.name}.resources.nodes"
    if not env.get("SLURM_JOB_ID"):
        raise RuntimeError(
            f"{key} is {method.nodes}: a multi-node run needs a Slurm job of {method.nodes} nodes "
            "and this job runs outside Slurm; run the study with `--profile slurm`, or set "
            f"{key}: 1 to train on this machine"
        )
    nodelist = env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST") or ""
    nodes = (
        int(env["SLURM_JOB_NUM_NODES"])
        if env.get("SLURM_JOB_NUM_NODES")
        else len(slurm_hosts(nodelist))
        if nodelist
        else 0
    )
    if nodes < method.nodes:
        raise RuntimeError(
            f"{key} is {method.nodes} but Slurm job {env['SLURM_JOB_ID']} has {nodes} node(s) "
            f"({nodelist or 'no SLURM_JOB_NODELIST'}); a profile's set-resources.train_run.nodes may "
            "override the method's: request the same count there"
        )


def slurm_hosts(nodelist: str) -> list[str]:
    """The hosts of a Slurm node list (`gpu[07-08,11],cpu1` -> gpu07 gpu08 gpu11 cpu1), from `scontrol show
    hostnames` when it is at hand, else expanded here (one bracket group per name)."""
    try:
        out = subprocess.run(
            ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True, timeout=30
        ).stdout.split()
        if out:
            return out
    except (OSError, subprocess.SubprocessError):
        pass
    hosts: list[str] = []
    for prefix, ranges in re.findall(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip()):
        if not ranges:
            hosts.append(prefix)
            continue
        for part in ranges.split(","):
            low, _, high = part.partition("-")
            hosts += [f"{prefix}{i:0{len(low)}d}" for i in range(int(low), int(high or low) + 1)]
    if not hosts:
        raise ValueError(f"cannot read a host from the Slurm node list {nodelist!r}")
    return hosts


def first_host(nodelist: str) -> str:
    """The main node: `scontrol show hostnames $SLURM_JOB_NODELIST | head -1`."""
    return slurm_hosts(nodelist)[0]


def slurm_machine(method: MethodSpec, port: int, env: Mapping[str, str] | None = None) -> Machine:
    """This node's rank (SLURM_PROCID, the task's rank: with one task per node it is the node's index; else
    SLURM_NODEID) and the main node (the first of the step's node list, else the job's) of a multi-node run."""
    env = os.environ if env is None else env
    rank = env.get("SLURM_PROCID") or env.get("SLURM_NODEID")
    nodelist = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or env.get("SLURM_NODELIST")
    if rank is None or not nodelist:
        raise RuntimeError(
            f"methods.{method.name}.resources.nodes is {method.nodes}: the node launcher reads its "
            "rank from SLURM_PROCID (or SLURM_NODEID) and the main node from SLURM_JOB_NODELIST, "
            "and they are not set; `srun` starts it inside the training job (see docs/scale.md)"
        )
    if not 0 <= int(rank) < method.nodes:
        raise RuntimeError(
            f"node rank {rank} is outside the {method.nodes} nodes of methods.{method.name}"
            ".resources.nodes; srun must start exactly one launcher per node (--ntasks-per-node=1)"
        )
    return Machine(int(rank), method.nodes, first_host(nodelist), port)


def check_visible_gpus(method: MethodSpec) -> None:
    """Each rank must see exactly the GPUs per node the method asked for: fewer would train on a plan that
    differs from the request (or crash later), more means the allocation and the request disagree."""
    if not method.gpus:
        return
    key = f"methods.{method.name}.resources.gpus"
    if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        # A CPU-only torch sees no GPU whatever is attached (the test cluster's GPUs are placeholders).
        log.warning(
            "%s asks for %d GPU(s) per node but torch %s is a CPU-only build: training runs on CPU; "
            "install a CUDA torch (make setup TORCH_SPEC=...) to use them",
            key,
            method.gpus,
            torch.__version__,
        )
        return
    visible = torch.cuda.device_count()
    if visible != method.gpus:
        raise RuntimeError(
            f"{key} asks for {method.gpus} GPU(s) per node, but this rank on {socket.gethostname()} sees {visible} "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); request what the node "
            f"gives the job ({key}, or set-resources.train_run in the profile), or fix the allocation"
        )


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_training(job: TrainingJob, threads: int = 1, log_sinks: Sequence[Any] = ()) -> None:
    """Train in this process, or under `accelerate launch` when the method asks for it.

    With a resume directory, this process holds the run's lock (`training.runlock`) for the whole
    run, launched ranks included: a second trainer of the same run stops before touching its state.
    `log_sinks` receive every train-log record in the in-process path; with `job.tracking`, the run's
    global rank 0 (this process, or the launched rank 0) owns the W&B run (`_train`).
    """
    model, task, method = job.specs()
    if job.tracking is not None:
        TrackingSpec.from_dict(job.tracking)  # a bad tracking slice fails here, before any rank starts
    with run_lock(job.resume_dir) if job.resume_dir else contextlib.nullcontext():
        if not needs_launcher(method):  # one process on one node
            check_visible_gpus(method)
            _train(job, log_sinks)
            return
        job_file = Path(job.run_dir) / JOB_FILE
        write_json(job_file, dataclasses.asdict(job))
        if method.nodes > 1:
            _launch(srun_command(method, job_file, threads, _free_port()), method.world_size, method)
        else:
            _launch(launch_command(method, job_file, threads), method.world_size, method)
        job_file.unlink()


def _launch(cmd: list[str], processes: int, method: MethodSpec) -> None:
    """Run the launcher in its own process group: stop signals reach it through this process
    (jobcontrol passes them on), it gets SIGTERM if this process is killed, and whatever of it is
    left when this process stops waiting (an error, a signal) is killed with it."""
    log.info("launching %d processes: %s", processes, " ".join(cmd))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")])
        ),
    }
    if method.deepspeed and not torch.cuda.is_available():
        env.setdefault("DS_ACCELERATOR", "cpu")  # explicit: DeepSpeed's auto-detection only warns
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


def _read_job(job_file: str) -> TrainingJob:
    with open(job_file, encoding="utf-8") as handle:
        return TrainingJob(**json.load(handle))


def _main(job_file: str) -> None:
    """Entry point of each launched rank."""
    from tunetrace.logutil import setup_logging

    setup_logging()
    jobcontrol.run_as_job()  # dies with the launcher; stops at a step end on SIGTERM from it
    job = _read_job(job_file)
    check_visible_gpus(job.specs()[2])
    _train(job)
    _leave_process_group()
    _exit_without_teardown()


def _leave_process_group() -> None:
    """Tear this rank's process group down before the interpreter exits. Left to interpreter teardown, a rank
    that finished first (every rank but the main one returns right after the final save) can die with
    SIGABRT ("terminate called without an active exception": a communication thread destroyed while still
    joinable), which fails the whole launch after the run was written. Seen once in a full test run: 3 of the
    4 multi-rank CPU tests, in one 2-minute window on a loaded machine. Tearing down alone was not enough (the
    abort came back under load, about 1 launch in 6): every rank now waits at a barrier for the others, the main
    one included after it has written the run, so no rank takes its process group down while another still uses
    it."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _exit_without_teardown() -> None:
    """End a launched rank that has written everything (and left its process group) with exit status 0, without
    the interpreter's teardown: the barrier and teardown above made the abort rare but not gone (one ZeRO-3
    resume test in a loaded CI run: "terminate called without an active exception" in rank 1 after training and
    teardown, so the launch failed after the run was written). The abort is C++ static destructors running at
    exit() on a communication thread; os._exit skips them. Logs and standard streams are flushed first; the W&B run
    (rank 0) was finished by the tracker, so no atexit hook is left with work to do."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _node_main(job_file: str, port: int, threads: int) -> None:
    """Entry point of each node's launcher (one srun task per node): `accelerate launch` of this node's ranks."""
    from tunetrace.logutil import setup_logging

    setup_logging()
    jobcontrol.run_as_job()  # dies with its srun task; passes stop signals on to the node's ranks
    method = _read_job(job_file).specs()[2]
    machine = slurm_machine(method, port)
    log.info(
        "node %d of %d (%s), main process %s:%d",
        machine.rank,
        machine.count,
        socket.gethostname(),
        machine.main_ip,
        machine.port,
    )
    _launch(launch_command(method, Path(job_file), threads, machine), method.processes_per_node, method)


def is_global_main() -> bool:
    """Whether this process is rank 0 of the whole run (RANK, set by the launcher for every rank; unset in
    the in-process path, which is the only rank)."""
    return os.environ.get("RANK", "0") == "0"


def _train(job: TrainingJob, log_sinks: Sequence[Any] = ()) -> None:
    """One rank's training, representation capture included (built here so every rank has it). With
    `job.tracking`, rank 0 starts the W&B run, logs every train-log record to it and records its id in run.json;
    the other ranks import no wandb (one run per training run, however many ranks)."""
    from tunetrace.training.tracking import record_tracking, start_tracking

    tracking = TrackingSpec.from_dict(job.tracking) if job.tracking is not None and is_global_main() else None
    if tracking is None:
        _train_rank(job, log_sinks)
        return
    config = {"method": job.method, "task": job.task_name, "seed": job.seed}
    with start_tracking(tracking, job.method_name, job.task_name, job.seed, job.run_dir, config=config) as tracker:
        _train_rank(job, [*log_sinks, tracker.log])
    record_tracking(Path(job.run_dir) / RUN_METADATA, tracker)


def _train_rank(job: TrainingJob, log_sinks: Sequence[Any]) -> None:
    from tunetrace.analysis.steps import RepresentationSpec
    from tunetrace.training.loop import train_run
    from tunetrace.training.sizing import SizingSpec

    model, task, method = job.specs()
    spec = RepresentationSpec.from_dict(job.representations) if job.representations else None
    train_run(
        model,
        task,
        method,
        job.seed,
        job.data_dir,
        job.run_dir,
        resume_dir=job.resume_dir,
        representations=spec if spec and spec.enabled and job.reps_dir else None,
        reps_dir=job.reps_dir,
        log_sinks=log_sinks,
        sizing=SizingSpec.from_dict(job.sizing) if job.sizing is not None else None,
        resume_from_checkpoint=job.resume_from_checkpoint,
    )


if __name__ == "__main__":
    if sys.argv[1] == "--node":  # --node FILE --port P --threads T
        _node_main(sys.argv[2], int(sys.argv[4]), int(sys.argv[6]))
    else:
        _main(sys.argv[1])
