"""`tunetrace doctor --profile slurm`: what the cluster offers next to what every job of the study will request
(the light jobs, which run beside Snakemake, shown as local), and every request the cluster cannot meet, named
with its rule and the fix, before anything is submitted."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from tunetrace.cluster.profile import load_profile
from tunetrace.cluster.requests import DEFAULT_PARAMETERS, RULES, Request, study_requests
from tunetrace.cluster.slurm import ClusterFacts, Partition, SlurmUnavailable, query_cluster
from tunetrace.models.size import parameter_count
from tunetrace.study import Study, load_study_config

# The slurm executor checks job status with squeue only when MinJobAge >= 3 x its first status interval (40 s by
# default); below that it falls back to sacct, which without accounting fails on every poll.
SQUEUE_MIN_JOB_AGE_FACTOR = 3
DEFAULT_INIT_SECONDS = 40
LOCAL = "local"  # the partition column of a job that runs beside Snakemake (localrules)


@dataclass(frozen=True)
class Finding:
    """One problem: `error` stops the study before submission, `warning` only informs."""

    severity: str
    rule: str | None
    message: str


def first_attempt(value: Any, derived: int) -> int:
    """A set-resources value on the first attempt: a number, or an expression of `attempt` as Snakemake evaluates
    it (`8000 * attempt`); one that needs more than `attempt` counts as the derived request."""
    try:
        return int(value)
    except ValueError:
        try:
            return int(eval(str(value), {"__builtins__": {}}, {"attempt": 1}))  # noqa: S307 - the user's own profile
        except Exception:  # noqa: BLE001 - input, threads, ...: only Snakemake can evaluate it
            return derived


def apply_profile(request: Request, profile: Mapping[str, Any]) -> tuple[Request, str | None]:
    """The request after the profile's set-resources (they win over the rules), and its partition, if named (a local
    job has none)."""
    default = profile.get("default-resources") or {}
    own = (profile.get("set-resources") or {}).get(request.rule) or {}
    request = replace(
        request,
        mem_mb=first_attempt(own.get("mem_mb", request.mem_mb), request.mem_mb),
        runtime=first_attempt(own.get("runtime", request.runtime), request.runtime),
        gpus=first_attempt(own.get("gpu", request.gpus), request.gpus),
    )
    if request.local:
        return request, LOCAL
    return request, own.get("slurm_partition") or default.get("slurm_partition")


def _key(request: Request, what: str) -> str:
    if request.rule == "train_run":
        return f"methods.{request.method}.resources.{what}"
    return f"resources.{request.rule}.{what}"


def _job(request: Request) -> str:
    return request.rule + (f" (method {request.method})" if request.method else "")


def _gpu_fix(request: Request) -> str:
    """How to fix a GPU count the partition cannot give: training names the method's GPUs; an inference job's
    count follows the model (cluster.requests.inference_gpus), so it names the GPU memory it assumed."""
    partition = f"set slurm_partition of {request.rule} (profile set-resources) to a partition with more GPUs"
    if request.rule == "train_run":
        return f"{partition}, or methods.{request.method}.resources.gpus: 0 to train on CPU"
    return (
        f"{partition}, or resources.gpu_mem_gb to the memory of the partition's GPUs (the job asks for enough "
        "GPUs to hold its copies of the weights), or a profile set-resources gpu for it"
    )


def check_request(request: Request, partition: Partition) -> list[Finding]:
    """Problems of one request on the largest node of its partition; a retry's growth is a warning."""
    found, job = [], _job(request)
    limits = (
        ("mem_mb", request.mem_mb, partition.mem_mb, "MB of memory"),
        ("gpus", request.gpus, partition.gpus, "GPUs"),
        ("cpus", request.cpus, partition.cpus, "CPUs"),
    )
    for what, asked, offered, unit in limits:
        if asked > offered:
            fix = f"set {_key(request, what)} to at most {offered}" if what != "gpus" else _gpu_fix(request)
            found.append(
                Finding(
                    "error",
                    request.rule,
                    f"{job} requests {asked} {unit}; the largest node of "
                    f"partition '{partition.name}' has {offered}: {fix}",
                )
            )
    limit = partition.time_limit_min
    if limit is not None and request.runtime > limit:
        found.append(
            Finding(
                "error",
                request.rule,
                f"{job} requests {request.runtime} min; partition "
                f"'{partition.name}' allows {limit}: set {_key(request, 'runtime')} to at most {limit}",
            )
        )
    retry = request.retry(2)
    if request.mem_mb <= partition.mem_mb < retry.mem_mb:
        found.append(
            Finding(
                "warning",
                request.rule,
                f"{job}: the retry (attempt 2) would ask {retry.mem_mb} MB, "
                f"more than the {partition.mem_mb} MB of '{partition.name}'; sbatch will refuse it",
            )
        )
    return found


def status_findings(facts: ClusterFacts, profile: Mapping[str, Any]) -> list[Finding]:
    """Whether the executor's job-status command can work on this cluster."""
    command = profile.get("slurm-status-command") or "sacct"
    init = int(profile.get("slurm-init-seconds-before-status-checks") or DEFAULT_INIT_SECONDS)
    needed = SQUEUE_MIN_JOB_AGE_FACTOR * init
    age = facts.min_job_age_s
    if facts.accounting:
        return []
    if command == "sacct":
        return [
            Finding(
                "error",
                None,
                "accounting is off (AccountingStorageType=accounting_storage/none) and the "
                "profile polls job status with sacct: every poll fails and snakemake waits forever; set "
                "`slurm-status-command: squeue` in the profile",
            )
        ]
    if age is None or age < needed:
        return [
            Finding(
                "error",
                None,
                f"accounting is off and MinJobAge is {age} s: below {needed} s the executor "
                "falls back from squeue to sacct, which fails on every poll; ask for MinJobAge >= "
                f"{needed} in slurm.conf, or lower slurm-init-seconds-before-status-checks in the profile",
            )
        ]
    return []


def diagnose(
    requests: list[Request], facts: ClusterFacts, profile: Mapping[str, Any]
) -> tuple[list[tuple[Request, str]], list[Finding]]:
    """Each request with its partition after the profile's overrides, and every finding; local jobs are listed,
    not checked against a partition."""
    findings = status_findings(facts, profile)
    default = next((p.name for p in facts.partitions.values() if p.default), None)
    placed = []
    for request in requests:
        request, name = apply_profile(request, profile)
        name = name or default
        placed.append((request, name or "?"))
        if request.local:
            continue
        if name not in facts.partitions:
            findings.append(
                Finding(
                    "error",
                    request.rule,
                    f"{_job(request)}: partition '{name}' does not exist "
                    f"(partitions: {', '.join(sorted(facts.partitions))}); set slurm_partition in "
                    "the profile's default-resources or set-resources",
                )
            )
            continue
        findings += check_request(request, facts.partitions[name])
    return placed, findings


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    lines = [header, *rows]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines)


def _partition_row(p: Partition) -> list[str]:
    limit = "unlimited" if p.time_limit_min is None else f"{p.time_limit_min} min"
    return [
        p.name + ("*" if p.default else ""),
        "up" if p.available else "down",
        str(p.nodes),
        str(p.cpus),
        str(p.mem_mb),
        str(p.gpus),
        limit,
    ]


def render(
    facts: ClusterFacts,
    placed: list[tuple[Request, str]],
    findings: list[Finding],
    parameters: int,
    status_command: str,
) -> str:
    """The report: cluster, then requests, then findings."""
    accounting = f"on ({facts.accounting_storage})" if facts.accounting else "off (accounting_storage/none)"
    parts = [
        f"cluster: Slurm {facts.version}, accounting {accounting}, MinJobAge {facts.min_job_age_s} s, "
        f"profile status command: {status_command}",
        _table(
            ["partition", "state", "nodes", "cpus/node", "mem_mb/node", "gpus/node", "time limit"],
            [_partition_row(p) for p in facts.partitions.values()],
        ),
        f"\nstudy requests, every job (model of {parameters / 1e6:.1f}M parameters; attempt 2 doubles mem_mb and "
        f"runtime, set-resources included; partition {LOCAL}: runs beside snakemake, never submitted):",
        _table(
            ["rule", "method", "partition", "mem_mb", "runtime", "gpus", "cpus"],
            [
                [r.rule, r.method or "-", p, str(r.mem_mb), f"{r.runtime} min", str(r.gpus), str(r.cpus)]
                for r, p in placed
            ],
        ),
        "targets (no job of their own): " + ", ".join(r for r, s in RULES.items() if not s.job),
    ]
    if findings:
        parts.append("")
        parts += [f"{f.severity.upper()}: {f.message}" for f in findings]
    errors = sum(f.severity == "error" for f in findings)
    parts.append(f"\n{errors} request(s) the cluster cannot meet" if errors else "\nevery request fits the cluster")
    return "\n".join(parts)


def run_doctor(study: Study, profile_name: str) -> int:
    """Query the cluster, compute the study's requests, print both and every finding; 1 when one is an error."""
    profile = load_profile(profile_name)
    config = load_study_config(study)
    name = config["model"]["name_or_path"]
    counted = parameter_count(name, config["model"]["revision"], workdir=study.directory)
    parameters = config["resources"]["model_parameters"] or counted or DEFAULT_PARAMETERS
    try:
        facts = query_cluster()
    except SlurmUnavailable as err:
        print(f"tunetrace doctor: {err}", file=sys.stderr)
        return 2
    placed, findings = diagnose(study_requests(config, counted), facts, profile)
    print(study.describe())
    print(render(facts, placed, findings, parameters, profile.get("slurm-status-command") or "sacct (default)"))
    return 1 if any(f.severity == "error" for f in findings) else 0
