"""What every job of the workflow asks the scheduler for: memory, runtime, GPUs, nodes, tasks and threads of each
rule, and which rules run beside Snakemake instead of on a node (LOCAL_RULES).

The one place for these numbers: the rules ask through their resource functions (rules/resources.smk),
`tunetrace doctor` lists them against the cluster, and docs/scale.md's request tables are printed by
`python -m tunetrace.cluster.requests --markdown` (a test compares them with the doc).

Jobs that load the model are sized by it. Host memory (Slurm's --mem) is what a job needs in RAM: a fixed
overhead for Python, torch, the tokenizer and the data (0.6 to 1 GB measured for the 22M-parameter MiniLM,
benchmarks/), plus the copies of the weights the job holds at its peak. GPU memory is Slurm's business through the
GPU count. Light jobs (no model, small inputs) ask a fixed request and run locally. Every value is a first-attempt
estimate; memory and runtime are multiplied by the attempt on retries.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Assumed when the model is not on disk at the DAG build (a hub id the job will download); set
# resources.model_parameters in the config to the real count.
DEFAULT_PARAMETERS = 1_000_000_000
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
MB = 2**20
ROUND_MB = 500  # requests in steps of 500 MB, so similar models give the same request


@dataclass(frozen=True)
class RuleSchedule:
    """How the jobs of one rule are scheduled: `per` is "study" (one request whatever the method), "method" (one per
    method) or "lora_method" (one per LoRA method); `local` jobs run beside Snakemake, never on a node; a rule
    without `job` only gathers other rules' outputs (a target)."""

    per: str
    local: bool
    job: bool = True


# Every rule of the workflow (a test holds this against the `rule` lines of the Snakefile and rules/*.smk). Local:
# the targets, the checks and bookkeeping that load no model (check_model builds it on the meta device from
# config.json alone), and the scoring of a run's saved outputs (evaluate_run). Everything that loads the model's
# weights, trains or analyses them needs a node.
RULES = {
    "all": RuleSchedule("study", local=True, job=False),
    "smoke": RuleSchedule("study", local=True, job=False),
    "check_model": RuleSchedule("study", local=True),
    "prepare_data": RuleSchedule("study", local=True),
    "evaluate_baseline": RuleSchedule("study", local=False),
    "extract_base_representations": RuleSchedule("study", local=False),
    "pilot_run": RuleSchedule("method", local=False),
    "evaluate_gate": RuleSchedule("method", local=True),
    "train_run": RuleSchedule("method", local=False),
    "evaluate_run": RuleSchedule("method", local=True),
    "evaluate_checkpoint": RuleSchedule("method", local=False),
    "validate_run": RuleSchedule("method", local=False),
    "merge_adapter": RuleSchedule("lora_method", local=False),
    "verify_merge": RuleSchedule("lora_method", local=False),
    "compute_drift": RuleSchedule("method", local=True),
    "plot_drift": RuleSchedule("study", local=True),
    "plot_training_curves": RuleSchedule("study", local=True),
    "compare_runs": RuleSchedule("study", local=True),
    "summarize_lineage": RuleSchedule("study", local=True),
    "run_smoke_test": RuleSchedule("method", local=False),
}
LOCAL_RULES = tuple(rule for rule, schedule in RULES.items() if schedule.local)
JOB_RULES = tuple(rule for rule, schedule in RULES.items() if schedule.job)

# Light jobs: (host memory in MB, runtime in minutes), whatever the model. compute_drift holds two steps' pooled
# representations of the probe set at a time, not weights.
FIXED = {
    "check_model": (2000, 10),
    "prepare_data": (2000, 30),
    "evaluate_gate": (500, 5),
    "compute_drift": (4000, 30),
    "plot_drift": (1000, 10),
    "plot_training_curves": (1000, 10),
    "compare_runs": (1000, 10),
    "summarize_lineage": (1000, 30),
}
# Peak copies of the weights in host memory (model dtype): from_pretrained holds the state dict beside the model
# while loading; merge_adapter adds the merged weights being serialised; verify_merge holds the adapter model and
# the merged model at once.
# evaluate_run holds none: it scores the outputs its training job wrote (stages.train.predict_final), loading no model.
# validate_run loads one checkpoint at a time (2 copies while loading), then its weight analysis holds the base and
# the final model side by side, plus one matrix pair in float64 (stages.validate.analyze_weights).
# evaluate_checkpoint loads one checkpoint as evaluate_baseline loads the base model.
WEIGHT_COPIES = {
    "evaluate_baseline": 2,
    "evaluate_checkpoint": 2,
    "extract_base_representations": 2,
    "evaluate_run": 0,
    "merge_adapter": 3,
    "verify_merge": 4,
    "validate_run": 4,
}
# Copies of the weights an inference job places on its GPUs (models.placement): one model, or two side by side
# (the merge check's adapter and merged models, the weight analysis's base and final models).
GPU_COPIES = {
    "evaluate_baseline": 1,
    "evaluate_checkpoint": 1,
    "extract_base_representations": 1,
    "merge_adapter": 1,
    "verify_merge": 2,
    "validate_run": 2,
}
# Full fine-tuning on CPU holds fp32 weights, gradients and two AdamW moments in host memory (16 B/param). On
# GPUs each rank holds only its loading copies (2 x model dtype) on the host, and the main rank stages fp32 weights
# and moments (12 B/param) there for each checkpoint. LoRA trains small adapters on frozen weights.
# The pilot of a gate and the smoke test train the method through train_run's launcher (its GPUs, ranks, DeepSpeed
# stage and nodes): they ask what train_run of the method asks, but their own (shorter) runtime.
CPU_FULL_TRAIN_BYTES = 16
CHECKPOINT_STAGING_BYTES = 12
TRAINING_RULES = ("train_run", "pilot_run", "run_smoke_test")
# Minutes: a base plus minutes per billion parameters; on CPU the per-billion part is six times longer.
# Training: 1 min per 1e9 parameters for loading and start-up (a 70B bf16 model is 140 GB read at ~1 GB/s).
# validate_run's weight analysis (per matrix, in float64 on the CPU: the base's SVD, the update's singular values,
# the tuned matrix's top-k vectors) is most of it at scale, hours for a 7B model's full update (the measured rates
# are in BENCHMARKS.md); the estimate leaves a third more.
# Training jobs (TRAINING_RULES) take the base and per-billion part here for start-up and loading, and add their
# work (TrainingWork below); only where the study's data cannot be counted at the DAG build (a hub split) does
# the per-billion part stand for the work: 240 min per 1e9 parameters for train_run, as before it was counted.
RUNTIME = {
    "evaluate_baseline": (20, 20),
    "evaluate_checkpoint": (20, 20),
    "extract_base_representations": (60, 20),
    "evaluate_run": (10, 0),
    "merge_adapter": (15, 10),
    "verify_merge": (20, 30),
    "validate_run": (30, 12),
    "train_run": (30, 1),
    "pilot_run": (20, 1),
    "run_smoke_test": (20, 1),
}
UNCOUNTED_TRAIN_MINUTES_PER_BILLION = 240
CPU_SLOWDOWN = 6
# Training work: the tokens a job trains on (its optimiser steps x effective batch x tokens per example: the task's
# max_length, or fewer where the data file's bytes per example say the texts are shorter, _tokens_per_example)
# times FLOPs per token and parameter: 6 for full fine-tuning (forward 2, backward 4), 4 for LoRA (the frozen
# matrices get no weight gradients), 2 more with gradient checkpointing (the forward pass again); plus the forward
# passes (2) over the eval split at each evaluation and the final prediction. Sustained rates per GPU (about a
# third of an A100's bf16 peak, an eighth of an H100's) and per CPU thread (fp32): the demo's full run trains at
# about 75 GFLOP/s per thread counted this way on this project's 2-core CI machine (11,360 padded tokens per
# epoch, 3 epochs in about 30 s, BENCHMARKS.md), and a cluster's cores vary. Checkpoints add their bytes at
# CHECKPOINT_WRITE_BPS (full: weights + fp32 master and AdamW moments). The work's time is then multiplied by
# WORK_MARGIN.
TRAIN_FLOPS = {"full": 6, "lora": 4}
BYTES_PER_TOKEN = 2.5  # English text is ~4 bytes per token; 2.5 leaves room for padding and special tokens
RECOMPUTE_FLOPS = 2
FORWARD_FLOPS = 2
GPU_FLOPS = {"bf16": 100e12, "fp16": 100e12, "fp32": 15e12}
CPU_FLOPS_PER_THREAD = 25e9
CHECKPOINT_WRITE_BPS = 500e6
WORK_MARGIN = 1.5
# Threads (Slurm: CPUs per task) of the jobs that are not training (training takes methods.<name>.resources.cpus).
# Scoring a run loads no model and merging is bound by (de)serialisation: one thread, as the light jobs. The
# validation's reloads and weight analysis, the baseline's and the merge check's forward passes and the base
# model's representations are numeric work only at scale: one thread below SMALL_MODEL parameters, so two such
# jobs share a 2-core machine instead of each holding both cores while one sits idle (the demo's time:
# BENCHMARKS.md, "The demo end to end"). Training (the pilot and the smoke test too) takes the method's cpus.
DEFAULT_THREADS = 2
ONE_THREAD_RULES = ("evaluate_run", "merge_adapter", *FIXED)
SMALL_MODEL_ONE_THREAD_RULES = (
    "validate_run",
    "evaluate_baseline",
    "evaluate_checkpoint",
    "verify_merge",
    "extract_base_representations",
)
SMALL_MODEL = 200_000_000
GATE_RULES = ("pilot_run", "evaluate_gate")  # jobs only of the methods with gate.enabled
# Scaled by the attempt: a job killed for memory or time comes back with more (profile set-resources included).
RETRY_SCALED = ("mem_mb", "runtime")


@dataclass(frozen=True)
class Request:
    """What one job asks the scheduler for on its first attempt; `local` jobs run beside Snakemake."""

    rule: str
    method: str | None
    mem_mb: int
    runtime: int
    gpus: int
    cpus: int
    nodes: int = 1
    local: bool = False

    def retry(self, attempt: int) -> Request:
        """The request of a later attempt: memory and runtime grow with the attempt number."""
        return Request(
            self.rule,
            self.method,
            self.mem_mb * attempt,
            self.runtime * attempt,
            self.gpus,
            self.cpus,
            self.nodes,
            self.local,
        )


def _round_up(mb: float) -> int:
    return int(math.ceil(mb / ROUND_MB) * ROUND_MB)


def method_gpus(method: Mapping[str, Any]) -> int:
    """GPUs of a method's training job (0 for a CPU-only method)."""
    return int(method["resources"]["gpus"])


def ranks_on_node(method: Mapping[str, Any]) -> int:
    """Training processes on the node: each holds its own copy of the model in host memory."""
    return int(method.get("processes") or max(1, method_gpus(method)))


def _cpu_training_mb(parameters: int, weights: int, full: bool, overhead_mb: int) -> float:
    """One CPU rank's host memory: fp32 weights, gradients and AdamW moments (full) or two loading copies (LoRA)."""
    return overhead_mb + (parameters * CPU_FULL_TRAIN_BYTES if full else 2 * weights) / MB


def memory_mb(rule: str, parameters: int, dtype: str, method: Mapping[str, Any] | None, overhead_mb: int) -> int:
    """First-attempt host memory of a job, in MB."""
    if rule in FIXED:
        return FIXED[rule][0]
    weights = parameters * BYTES[dtype]
    if rule in WEIGHT_COPIES:
        return _round_up(overhead_mb + WEIGHT_COPIES[rule] * weights / MB)
    assert method is not None, f"{rule} is sized by its method"
    full = method["type"] == "full"
    if not method_gpus(method):
        return _round_up(ranks_on_node(method) * _cpu_training_mb(parameters, weights, full, overhead_mb))
    staging = parameters * CHECKPOINT_STAGING_BYTES if full else 0
    return _round_up(ranks_on_node(method) * (overhead_mb + 2 * weights / MB) + staging / MB)


def runtime_minutes(rule: str, parameters: int, on_gpu: bool) -> int:
    """First-attempt wall-clock limit of a job that is not training, in minutes."""
    if rule in FIXED:
        return FIXED[rule][1]
    base, per_billion = RUNTIME[rule]
    return int(math.ceil(base + per_billion * (1 if on_gpu else CPU_SLOWDOWN) * parameters / 1e9))


@dataclass(frozen=True)
class TrainingWork:
    """What one training job of a method on a task does, as far as the DAG build can tell (see TRAIN_FLOPS)."""

    steps: int
    train_tokens: int
    eval_tokens: int
    checkpoints: int

    def minutes(self, parameters: int, dtype: str, method: Mapping[str, Any], rate: float) -> float:
        """Minutes of this work at `rate` FLOP/s, with WORK_MARGIN; a full fine-tuning checkpoint holds the
        weights (in the model's dtype), the fp32 master weights and the AdamW moments, a LoRA one the adapters."""
        per_token = TRAIN_FLOPS[method["type"]] + (RECOMPUTE_FLOPS if method["gradient_checkpointing"] else 0)
        flops = parameters * (per_token * self.train_tokens + FORWARD_FLOPS * self.eval_tokens)
        full = method["type"] == "full"
        write_s = self.checkpoints * parameters * (BYTES[dtype] + CHECKPOINT_STAGING_BYTES) / CHECKPOINT_WRITE_BPS
        return WORK_MARGIN * (flops / rate + (write_s if full else 0)) / 60


def _task_examples(task: Mapping[str, Any], split: str) -> int | None:
    """The examples of a task's split counted from its local file, capped by max_<split>_examples; the cap alone
    where the file cannot be counted (a hub split), None where neither is known."""
    from tunetrace.data.counting import count_examples

    source = task["source"]
    counted = count_examples(source.get(split), source["format"])
    cap = task.get(f"max_{split}_examples")
    return counted if cap is None else cap if counted is None else min(counted, cap)


def _tokens_per_example(task: Mapping[str, Any]) -> int:
    """Tokens a training example takes: the task's max_length, or less where its local text file (CSV, TSV, JSON
    Lines) holds fewer bytes per example than BYTES_PER_TOKEN x max_length (padding to each batch's longest
    example included in the rate). A SQuAD context fills max_length; Parquet and hub data are not read."""
    from tunetrace.data.counting import mean_bytes_per_example
    from tunetrace.registry import entry

    limit = int(task["max_length"])
    if entry(task["type"]).fills_max_length:
        return limit
    mean_bytes = mean_bytes_per_example(task["source"].get("train"), task["source"]["format"])
    return limit if mean_bytes is None else max(1, min(limit, math.ceil(mean_bytes / BYTES_PER_TOKEN)))


def training_work(rule: str, config: Mapping[str, Any], method: str, task: str) -> TrainingWork | None:
    """The work of train_run (the method's epochs or max_steps), pilot_run (gate.pilot_steps) or run_smoke_test
    (validation.smoke_steps) of `method` on `task`; None when the training examples are not known."""
    from tunetrace.registry import entry
    from tunetrace.training.sizing import planned_steps

    spec, settings = config["methods"][method], config["tasks"][task]
    world = ranks_on_node(spec) * int(spec["resources"]["nodes"])
    batch, accumulation = int(spec["batch_size"]), int(spec["gradient_accumulation_steps"])
    max_steps, every, save_every = spec["max_steps"], spec["eval_every_steps"], spec["save_every_steps"]
    if rule == "pilot_run":
        max_steps, every, save_every = spec["gate"]["pilot_steps"], None, None
    elif rule == "run_smoke_test":
        validation = config["validation"]
        max_steps, every, save_every = validation["smoke_steps"], None, validation["smoke_save_every_steps"]
    examples = _task_examples(settings, "train")
    if examples is None and not max_steps:
        return None
    steps = planned_steps(examples or 0, batch, accumulation, world, spec["epochs"], max_steps)
    length = _tokens_per_example(settings)
    eval_length = length + (int(settings["max_new_tokens"]) if entry(settings["type"]).decodes_in_eval else 0)
    evaluations = 1 + (steps // every if every else 0)
    return TrainingWork(
        steps=steps,
        train_tokens=steps * batch * accumulation * world * length,
        eval_tokens=evaluations * (_task_examples(settings, "eval") or 0) * eval_length,
        checkpoints=1 + (steps // save_every if save_every else 0),
    )


def training_minutes(
    rule: str, config: Mapping[str, Any], parameters: int, method: str, task: str | None, gpus: int
) -> int:
    """First-attempt wall-clock limit of a training job, in minutes: start-up and loading (RUNTIME) plus the work
    on `task` (the study's longest task where `task` is None, as in the request tables)."""
    spec = config["methods"][method]
    base, per_billion = RUNTIME[rule]
    slowdown = 1 if gpus else CPU_SLOWDOWN
    rate = gpus * GPU_FLOPS[spec["precision"]] if gpus else int(spec["resources"]["cpus"]) * CPU_FLOPS_PER_THREAD
    rate *= int(spec["resources"]["nodes"])
    works = [training_work(rule, config, method, t) for t in ([task] if task else sorted(config["tasks"]))]
    if any(w is None for w in works):  # examples not countable at the DAG build: by the model's size alone
        per_billion += UNCOUNTED_TRAIN_MINUTES_PER_BILLION if rule == "train_run" else 0
        work = 0.0
    else:
        work = max(w.minutes(parameters, config["model"]["dtype"], spec, rate) for w in works)
    return int(math.ceil(base + per_billion * slowdown * parameters / 1e9 + work))


def inference_gpus(rule: str, parameters: int, dtype: str, gpu_mem_gb: float) -> int:
    """GPUs that hold an inference job's copies of the weights (GPU_COPIES) within the placement's headroom:
    models.placement shards a model larger than one GPU over the job's GPUs."""
    from tunetrace.models.placement import HEADROOM

    weights = parameters * BYTES[dtype] * GPU_COPIES[rule]
    return max(1, math.ceil(weights / (HEADROOM * gpu_mem_gb * 1e9)))


def rule_gpus(rule: str, config: Mapping[str, Any], parameters: int, method: str | None) -> int:
    """GPUs where the study trains on GPUs, derived from the method and the model: training takes the method's;
    each inference job (GPU_COPIES) enough of resources.gpu_mem_gb for its copies of the weights, where its method
    (or, for the study's jobs, any method) has GPUs. A CPU-only study asks none; scoring a run loads no model;
    the pilot and the smoke test go through train_run's launcher and ask what it asks."""
    methods = config["methods"]
    if rule in TRAINING_RULES:
        return method_gpus(methods[method])
    if rule not in GPU_COPIES:
        return 0
    on_gpus = method_gpus(methods[method]) if method else any(method_gpus(m) for m in methods.values())
    if not on_gpus:
        return 0
    return inference_gpus(rule, parameters, config["model"]["dtype"], config["resources"]["gpu_mem_gb"])


def job_threads(rule: str, parameters: int | None) -> int:
    """Threads of a job that is not training (see ONE_THREAD_RULES); unknown sizes count as large."""
    if rule in ONE_THREAD_RULES:
        return 1
    if rule in SMALL_MODEL_ONE_THREAD_RULES and parameters is not None and parameters < SMALL_MODEL:
        return 1
    return DEFAULT_THREADS


def _overrides(rule: str, config: Mapping[str, Any], method: str | None) -> Mapping[str, Any]:
    """The config's own request of a rule: methods.<name>.resources for training, resources.<rule> otherwise; the
    pilot and the smoke test take the method's but its runtime (theirs is shorter), resources.<rule> over it."""
    if rule == "train_run":
        return config["methods"][method]["resources"]
    own = config["resources"].get(rule) or {}
    if rule in TRAINING_RULES:
        return {**{k: v for k, v in config["methods"][method]["resources"].items() if k != "runtime"}, **own}
    return own


def job_request(
    rule: str, config: Mapping[str, Any], parameters: int | None, method: str | None = None, task: str | None = None
) -> Request:
    """The first-attempt request of one job of `rule` (on `task`, where the rule trains: None sizes the study's
    longest task); config overrides (resources.<rule>, methods.<name>.resources for train_run) win over the
    estimate."""
    if rule not in RULES or not RULES[rule].job:
        raise KeyError(f"{rule}: not a rule with jobs of its own; add it to tunetrace.cluster.requests.RULES")
    settings = config["resources"]
    parameters = settings["model_parameters"] or parameters or DEFAULT_PARAMETERS
    spec = config["methods"][method] if method else None
    gpus = rule_gpus(rule, config, parameters, method)
    override = _overrides(rule, config, method)
    mem = override.get("mem_mb") or memory_mb(rule, parameters, config["model"]["dtype"], spec, settings["overhead_mb"])
    # a job with GPUs runs its model there (training, or models.placement for the inference jobs)
    on_gpu = gpus > 0
    runtime = override.get("runtime") or (
        training_minutes(rule, config, parameters, method, task, gpus)
        if rule in TRAINING_RULES
        else runtime_minutes(rule, parameters, on_gpu)
    )
    cpus = spec["resources"]["cpus"] if rule in TRAINING_RULES else job_threads(rule, parameters)
    nodes = spec["resources"]["nodes"] if rule in TRAINING_RULES else 1
    return Request(rule, method, int(mem), int(runtime), gpus, int(cpus), int(nodes), RULES[rule].local)


def slurm_resources(request: Request) -> dict[str, int | str]:
    """The job's resources for snakemake-executor-plugin-slurm besides memory and runtime.

    `gpu` becomes sbatch --gpus, a count for the whole job that Slurm may spread unevenly over nodes, so a
    multi-node job asks per node through `gres` (--gres=gpu:N) instead; the two exclude each other. `tasks` is
    --ntasks for a CPU job (one launcher per node) but --ntasks-per-gpu for a GPU job, so a GPU job leaves it 0 and
    gets Slurm's default of one task per node. `cpus_per_gpu` (--cpus-per-gpu) is rounded up, so each node has
    the method's cpus. Only training spans nodes; the other jobs name their GPUs alone."""
    multi_node = request.nodes > 1
    resources: dict[str, int | str] = {"gpu": 0 if multi_node else request.gpus}
    if request.rule in TRAINING_RULES:
        gpus = request.gpus
        resources.update(
            nodes=request.nodes,
            gres=f"gpu:{gpus}" if multi_node and gpus else "",
            tasks=0 if gpus else request.nodes,
            cpus_per_gpu=-(-request.cpus // gpus) if gpus else 0,
        )
    return resources


def retry_expression(value: int) -> str:
    """A fixed request (a profile's set-resources value) as the resource expression that grows with the attempt."""
    return f"{int(value)} * attempt"


def _methods_of(rule: str, config: Mapping[str, Any]) -> list[str | None]:
    methods = sorted(config["methods"])
    per = RULES[rule].per
    if per == "lora_method":
        return [m for m in methods if config["methods"][m]["type"] == "lora"]
    if per == "method":
        return [m for m in methods if rule not in GATE_RULES or config["methods"][m]["gate"]["enabled"]]
    return [None]


def in_study(rule: str, config: Mapping[str, Any]) -> bool:
    """Whether the study's DAG has jobs of `rule` (the representations' rules only with representations.enabled;
    the smoke test is on demand, `snakemake smoke`, and always listed)."""
    if rule in ("extract_base_representations", "compute_drift", "plot_drift"):
        return bool(config["representations"]["enabled"])
    return RULES[rule].job


def study_requests(config: Mapping[str, Any], parameters: int | None) -> list[Request]:
    """One request per (rule, method) of the study's jobs, every rule of RULES in its order, as the rules compute
    them."""
    return [
        job_request(rule, config, parameters, method)
        for rule in JOB_RULES
        if in_study(rule, config)
        for method in _methods_of(rule, config)
    ]


def _memory_formula(rule: str) -> str:
    if rule in FIXED:
        return f"{FIXED[rule][0]} MB"
    if rule in WEIGHT_COPIES:
        copies = WEIGHT_COPIES[rule]
        return f"overhead + {copies} copies of the weights" if copies else "overhead (no model loaded)"
    cpu = f"overhead + {CPU_FULL_TRAIN_BYTES} B/param (full) or 2 copies (LoRA)"
    return (
        f"per rank on the node: on CPU {cpu}; on GPUs overhead + 2 copies, full adds "
        f"{CHECKPOINT_STAGING_BYTES} B/param of checkpoint staging"
    )


def _runtime_formula(rule: str) -> str:
    if rule in FIXED:
        return f"{FIXED[rule][1]} min"
    base, per_billion = RUNTIME[rule]
    if rule in TRAINING_RULES:
        steps = {"train_run": "epochs or max_steps", "pilot_run": "gate.pilot_steps", "run_smoke_test": "smoke_steps"}
        return (
            f"{base} + {per_billion} min per 1e9 parameters ({per_billion * CPU_SLOWDOWN} on CPU) + "
            f"{WORK_MARGIN} x the work ({steps[rule]}; see above)"
        )
    if not per_billion:
        return f"{base} min"
    return f"{base} + {per_billion} min per 1e9 parameters on GPUs, {per_billion * CPU_SLOWDOWN} on CPU"


def _gpu_formula(rule: str) -> str:
    if rule == "train_run":
        return "the method's `resources.gpus`"
    if rule in GPU_COPIES:
        return (
            f"where the study trains on GPUs: ceil({GPU_COPIES[rule]} x weights / (headroom x `resources.gpu_mem_gb`))"
        )
    return "0"


def formula_table() -> str:
    """How each rule's first-attempt request is computed, as a Markdown table (docs/scale.md)."""
    rows = ["| job | runs on | host memory (`--mem`) | runtime | GPUs |", "|---|---|---|---|---|"]
    rows += [
        f"| `{rule}` | {'local' if RULES[rule].local else 'node'} | {_memory_formula(rule)} | "
        f"{_runtime_formula(rule)} | {_gpu_formula(rule)} |"
        for rule in JOB_RULES
    ]
    return "\n".join(rows)


def markdown_table(config: Mapping[str, Any], parameters: int | None) -> str:
    """The study's requests as a Markdown table (docs/scale.md)."""
    rows = ["| job | method | runs on | host memory | runtime | GPUs | threads |", "|---|---|---|---|---|---|---|"]
    for r in study_requests(config, parameters):
        where = "local" if r.local else f"{r.nodes} nodes" if r.nodes > 1 else "node"
        rows.append(
            f"| `{r.rule}` | {r.method or '-'} | {where} | {r.mem_mb} MB | {r.runtime} min | {r.gpus} | {r.cpus} |"
        )
    return "\n".join(rows)


# The studies whose requests docs/scale.md shows: the demo's (config/config.yaml: MiniLM, 22.7M parameters, float32,
# CPU only), a 1B float32 model with a gated one-GPU full fine-tuning beside a CPU-only LoRA, and a 70B bfloat16
# model whose LoRA trains on 4 GPUs: its inference jobs ask for the GPUs that hold their copies of the weights.
DEMO_PARAMETERS = 22_713_728
# Their one task: an SST-2-sized classification set at max_length 64 (its examples given as caps, as the tables
# are printed with no data file to count).
EXAMPLE_TASK = {"max_train_examples": 67_349, "max_eval_examples": 872, "max_length": 64}
EXAMPLE_STUDIES: dict[str, dict[str, Any]] = {
    "demo": {
        "methods": {
            "full": {"type": "full", "resources": {"cpus": 1}},
            "lora_r8": {"type": "lora", "resources": {"cpus": 1}},
        },
        "parameters": DEMO_PARAMETERS,
    },
    "1b": {
        "methods": {
            "full": {"type": "full", "resources": {"gpus": 1, "cpus": 8}, "gate": {"enabled": True}},
            "lora": {"type": "lora", "resources": {"cpus": 4}},
        },
        "parameters": 1_000_000_000,
    },
    "70b": {
        "methods": {"lora": {"type": "lora", "resources": {"gpus": 4, "cpus": 16}}},
        "parameters": 70_000_000_000,
        "dtype": "bfloat16",
    },
}


def example_config(name: str) -> dict[str, Any]:
    """A complete config (schema defaults filled) of one of EXAMPLE_STUDIES."""
    from tunetrace.config import validate_config

    study = EXAMPLE_STUDIES[name]
    return validate_config(
        {
            "model": {"dtype": study.get("dtype", "float32")},
            "seeds": [0],
            "methods": study["methods"],
            "resources": {"model_parameters": study["parameters"]},
            "tasks": {"t": {"source": {"train": "train.csv"}, "labels": ["a", "b"], **EXAMPLE_TASK}},
        }
    )


def markdown() -> str:
    """docs/scale.md's request tables: the formulas, then the requests of each example study."""
    studies = [f"Study `{name}`:\n\n{markdown_table(example_config(name), None)}" for name in EXAMPLE_STUDIES]
    return "\n\n".join([formula_table(), *studies])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tunetrace.cluster.requests", description="Print docs/scale.md's request tables."
    )
    parser.add_argument("--markdown", action="store_true", required=True, help="the tables as Markdown")
    parser.parse_args(argv)
    print(markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
