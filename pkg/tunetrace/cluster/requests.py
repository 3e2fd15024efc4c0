"""Memory, runtime and GPUs of the model jobs, derived from the base model's size and the method.

The rules call `job_request` from their `resources:` (rules/resources.smk), `tunetrace doctor` calls it to
show what a study will request. Host memory (Slurm's --mem) is what a job needs in RAM: a fixed overhead for
Python, torch, the tokenizer and the data (0.6 to 1 GB measured for the 22M-parameter MiniLM, benchmarks/),
plus the copies of the weights the job holds at its peak. GPU memory is Slurm's business through the GPU
count. Every value is a first-attempt estimate; memory and runtime are multiplied by the attempt on retries.
"""

from __future__ import annotations

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
MODEL_RULES = ("evaluate_baseline", "evaluate_run", "merge_adapter", "verify_merge", "validate_run", "train_run")

# Peak copies of the weights in host memory (model dtype): from_pretrained holds the state dict beside the model
# while loading; merge_adapter adds the merged weights being serialised; verify_merge holds the adapter model and
# the merged model at once.
# evaluate_run holds none: it scores the outputs its training job wrote (stages.train.predict_final), loading no model.
# validate_run loads one checkpoint at a time (2 copies while loading), then its weight analysis holds the base and
# the final model side by side, plus one matrix pair in float64 (stages.validate.analyze_weights).
WEIGHT_COPIES = {"evaluate_baseline": 2, "evaluate_run": 0, "merge_adapter": 3, "verify_merge": 4, "validate_run": 4}
# Full fine-tuning on CPU holds fp32 weights, gradients and two AdamW moments in host memory (16 B/param). On
# GPUs each rank holds only its loading copies (2 x model dtype) on the host, and the main rank stages fp32 weights
# and moments (12 B/param) there for each checkpoint. LoRA trains small adapters on frozen weights.
CPU_FULL_TRAIN_BYTES = 16
CHECKPOINT_STAGING_BYTES = 12
# Minutes: a base plus minutes per billion parameters; on CPU the per-billion part is six times longer.
# validate_run's weight analysis (per matrix, in float64 on the CPU: the base's SVD, the update's singular values,
# the tuned matrix's top-k vectors) is most of it at scale: 6.6 s per 2048 x 2048 matrix on 2 threads here, about
# 55 s at 4096, some 6 hours for a 7B model's full update; the estimate leaves a third more.
RUNTIME = {"evaluate_baseline": (20, 20), "evaluate_run": (10, 0), "merge_adapter": (15, 10),
           "verify_merge": (20, 30), "validate_run": (30, 12), "train_run": (60, 240)}
CPU_SLOWDOWN = 6
# Threads (Slurm: CPUs per task) of the jobs that are not training (training takes methods.<name>.resources.cpus).
# Scoring a run loads no model and merging is bound by (de)serialisation: one thread. The validation's reloads and
# weight analysis, the baseline's and the merge check's forward passes and the base model's representations
# are numeric work only at scale: one thread below SMALL_MODEL parameters, so two such jobs share a 2-core machine
# instead of each holding both cores while one sits idle (the demo's time: BENCHMARKS.md, "The demo end to end").
DEFAULT_THREADS = 2
ONE_THREAD_RULES = ("evaluate_run", "merge_adapter")
SMALL_MODEL_ONE_THREAD_RULES = ("validate_run", "evaluate_baseline", "verify_merge",
                                "extract_base_representations")
SMALL_MODEL = 200_000_000


@dataclass(frozen=True)
class Request:
    """What one job asks the scheduler for on its first attempt."""

    rule: str
    method: str | None
    mem_mb: int
    runtime: int
    gpus: int
    cpus: int

    def retry(self, attempt: int) -> Request:
        """The request of a later attempt: memory and runtime grow with the attempt number."""
        return Request(self.rule, self.method, self.mem_mb * attempt, self.runtime * attempt, self.gpus, self.cpus)


def _round_up(mb: float) -> int:
    return int(math.ceil(mb / ROUND_MB) * ROUND_MB)


def method_gpus(method: Mapping[str, Any]) -> int:
    """GPUs of a method's training job (0 for a CPU-only method)."""
    return int(method["resources"]["gpus"])


def ranks_on_node(method: Mapping[str, Any]) -> int:
    """Training processes on the node: each holds its own copy of the model in host memory."""
    return int(method.get("processes") or max(1, method_gpus(method)))


def memory_mb(rule: str, parameters: int, dtype: str, method: Mapping[str, Any] | None, overhead_mb: int) -> int:
    """First-attempt host memory of a model job, in MB."""
    weights = parameters * BYTES[dtype]
    if rule != "train_run":
        return _round_up(overhead_mb + WEIGHT_COPIES[rule] * weights / MB)
    assert method is not None
    full = method["type"] == "full"
    if not method_gpus(method):
        per_rank = parameters * CPU_FULL_TRAIN_BYTES if full else 2 * weights
        return _round_up(ranks_on_node(method) * (overhead_mb + per_rank / MB))
    staging = parameters * CHECKPOINT_STAGING_BYTES if full else 0
    return _round_up(ranks_on_node(method) * (overhead_mb + 2 * weights / MB) + staging / MB)


def runtime_minutes(rule: str, parameters: int, on_gpu: bool) -> int:
    """First-attempt wall-clock limit of a model job, in minutes."""
    base, per_billion = RUNTIME[rule]
    return int(math.ceil(base + per_billion * (1 if on_gpu else CPU_SLOWDOWN) * parameters / 1e9))


def rule_gpus(rule: str, config: Mapping[str, Any], method: str | None) -> int:
    """GPUs only where the method has them: a CPU-only method's jobs request none, the baseline one when any
    method trains on GPUs, merging and the validation (CPU jobs) and scoring a run (evaluate_run: no model) none;
    the merge check one GPU however many training used."""
    methods = config["methods"]
    if rule == "train_run":
        return method_gpus(methods[method])
    if rule in ("merge_adapter", "evaluate_run", "validate_run"):
        return 0
    if rule == "evaluate_baseline":
        return int(any(method_gpus(m) for m in methods.values()))
    return min(1, method_gpus(methods[method]))


def job_threads(rule: str, parameters: int | None) -> int:
    """Threads of a job that is not training (see ONE_THREAD_RULES); unknown sizes count as large."""
    if rule in ONE_THREAD_RULES:
        return 1
    if rule in SMALL_MODEL_ONE_THREAD_RULES and parameters is not None and parameters < SMALL_MODEL:
        return 1
    return DEFAULT_THREADS


def job_request(rule: str, config: Mapping[str, Any], parameters: int | None, method: str | None = None) -> Request:
    """The first-attempt request of one model job; config overrides (resources.<rule>, methods.<name>.resources
    for train_run) win over the estimate."""
    settings = config["resources"]
    parameters = settings["model_parameters"] or parameters or DEFAULT_PARAMETERS
    spec = config["methods"][method] if method else None
    gpus = rule_gpus(rule, config, method)
    override = dict(spec["resources"]) if rule == "train_run" else dict(settings[rule])
    mem = override.get("mem_mb") or memory_mb(rule, parameters, config["model"]["dtype"], spec,
                                              settings["overhead_mb"])
    # Only training places the model on its GPUs; evaluation, merge and the merge check run on the CPU
    # (the model is never moved), so their runtime is estimated at CPU speed even where a GPU is allocated.
    on_gpu = rule == "train_run" and gpus > 0
    runtime = override.get("runtime") or runtime_minutes(rule, parameters, on_gpu)
    cpus = spec["resources"]["cpus"] if rule == "train_run" else job_threads(rule, parameters)
    return Request(rule, method, int(mem), int(runtime), gpus, int(cpus))


def study_requests(config: Mapping[str, Any], parameters: int | None) -> list[Request]:
    """One request per (model rule, method) of the study, as the rules will compute them."""
    methods = sorted(config["methods"])
    lora = [m for m in methods if config["methods"][m]["type"] == "lora"]
    requests = [job_request("evaluate_baseline", config, parameters)]
    for method in methods:
        requests += [job_request(rule, config, parameters, method)
                     for rule in ("train_run", "evaluate_run", "validate_run")]
    for method in lora:
        requests += [job_request(rule, config, parameters, method) for rule in ("merge_adapter", "verify_merge")]
    return requests
