"""What a Slurm cluster offers, read from `sinfo` and `scontrol show config` (parsing kept apart from running
the commands, so recorded outputs test it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

# One line per group of like nodes: partition (default marked *), availability, time limit, nodes, CPUs per
# node, memory per node (MB), GRES.
SINFO_FORMAT = "%P|%a|%l|%D|%c|%m|%G"
GPU_GRES = re.compile(r"gpu(?::[^:,(]+)?:(\d+)")


@dataclass(frozen=True)
class Partition:
    """The largest node of a partition and its limits (several node groups merged)."""

    name: str
    default: bool
    available: bool
    time_limit_min: int | None  # None: unlimited
    nodes: int
    cpus: int
    mem_mb: int
    gpus: int
    gres: str


@dataclass(frozen=True)
class ClusterFacts:
    partitions: dict[str, Partition]
    accounting: bool  # an accounting database answers sacct
    accounting_storage: str
    min_job_age_s: int | None
    version: str


def parse_time_limit(text: str) -> int | None:
    """Minutes of a Slurm time limit (`infinite`, `30`, `2:00:00`, `1-12:00:00`); None when unlimited."""
    text = text.strip().lower()
    if text in ("infinite", "unlimited", "n/a", ""):
        return None
    days, _, clock = text.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    if len(parts) == 1:
        minutes = parts[0]  # minutes
    else:
        parts = [0] * (3 - len(parts)) + parts  # [h, m, s]
        minutes = parts[0] * 60 + parts[1] + (1 if parts[2] else 0)
    return (int(days) * 1440 if days else 0) + minutes


def gres_gpus(gres: str) -> int:
    """GPUs per node in a GRES string (`gpu:4`, `gpu:a100:4(S:0-1)`, `(null)`; several types add up)."""
    return sum(int(n) for n in GPU_GRES.findall(gres))


def parse_sinfo(text: str) -> dict[str, Partition]:
    """Partitions from `sinfo -h -o SINFO_FORMAT`: per partition its largest node values and limits."""
    partitions: dict[str, Partition] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, avail, limit, nodes, cpus, mem, gres = line.split("|")[:7]
        default = name.endswith("*")
        name = name.rstrip("*")
        new = Partition(
            name,
            default,
            avail.strip() == "up",
            parse_time_limit(limit),
            int(nodes),
            int(cpus.rstrip("+")),
            int(mem.rstrip("+")),
            gres_gpus(gres),
            gres.strip(),
        )
        old = partitions.get(name)
        if old is not None:
            new = Partition(
                name,
                default or old.default,
                avail.strip() == "up" or old.available,
                new.time_limit_min,
                old.nodes + new.nodes,
                max(old.cpus, new.cpus),
                max(old.mem_mb, new.mem_mb),
                max(old.gpus, new.gpus),
                ",".join(sorted({old.gres, new.gres})),
            )
        partitions[name] = new
    return partitions


def parse_scontrol_config(text: str) -> dict[str, str]:
    """`Key = value` lines of `scontrol show config`."""
    pairs = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            pairs[key.strip()] = value.strip()
    return pairs


def parse_seconds(text: str | None) -> int | None:
    """Seconds of a `MinJobAge` value (`300 sec`, `1h`, `300`)."""
    match = re.match(r"^(\d+)\s*([a-z]*)", (text or "").strip().lower())
    if not match:
        return None
    return int(match.group(1)) * (3600 if match.group(2) in ("h", "hour", "hours") else 1)


def cluster_facts(sinfo: str, scontrol_config: str) -> ClusterFacts:
    """The cluster's partitions, accounting and MinJobAge from the two commands' outputs."""
    config = parse_scontrol_config(scontrol_config)
    storage = config.get("AccountingStorageType", "accounting_storage/none")
    return ClusterFacts(
        parse_sinfo(sinfo),
        storage != "accounting_storage/none",
        storage,
        parse_seconds(config.get("MinJobAge")),
        config.get("SLURM_VERSION", "?"),
    )


class SlurmUnavailable(RuntimeError):
    """sinfo or scontrol is missing or the controller does not answer."""


def _run(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        raise SlurmUnavailable(f"`{command[0]}` is not installed here: run tunetrace doctor on a cluster login node")
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise SlurmUnavailable(
            f"`{' '.join(command)}` failed ({proc.returncode}): {proc.stderr.strip()[-500:]}; "
            "is slurmctld up and SLURM_CONF right?"
        )
    return proc.stdout


def query_cluster() -> ClusterFacts:
    """Ask the running cluster (sinfo, scontrol show config)."""
    return cluster_facts(_run(["sinfo", "-h", "-o", SINFO_FORMAT]), _run(["scontrol", "show", "config"]))
