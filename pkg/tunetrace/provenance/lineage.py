"""Lineage records: which data, code, config and checkpoint produced each artifact.

Scheme (one rule, no exceptions): every output a rule declares, file or directory, gets a sidecar
`<output>.lineage.json` beside it (for a directory `final/`, the sidecar is `final.lineage.json`
next to it, so the directory's own content is untouched). A record holds the rule, wildcards, the
job's params, code and package versions, host and times, every input (path, sha256, the input's own
lineage id) and the output's files with sha256, size and mtime.

Hashing cost: outputs are hashed once, when written. An input that carries its own record is not
re-hashed when its files still have the recorded size and mtime; the audit (`tunetrace audit`) is
the only place that re-hashes everything. Never imports snakemake: adapters pass plain values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import importlib.metadata
import logging
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tunetrace.artifacts import RUN_METADATA
from tunetrace.fileio import canonical_json, read_json, sha256_file, write_json

log = logging.getLogger(__name__)

SCHEMA = "tunetrace.provenance.lineage/1"
SIDECAR_SUFFIX = ".lineage.json"
PKG_DIR = Path(__file__).resolve().parents[1]  # pkg/tunetrace
PACKAGES = (
    "python",
    "tunetrace",
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "safetensors",
    "snakemake",
    "numpy",
    "pandas",
    "scikit-learn",
    "wandb",
)
# params whose JSON names a base model that the job loads (a lineage source, like a raw data file)
MODEL_PARAM = "model"
# Snakemake drops this marker into directory outputs after the job; it is not content
IGNORED_NAMES = (".snakemake_timestamp",)
HASH_THREADS = min(4, os.cpu_count() or 1)


def recording_enabled() -> bool:
    """False when TUNETRACE_LINEAGE=0 (overhead benchmarks): no records are written, none can be checked."""
    return os.environ.get("TUNETRACE_LINEAGE", "1") != "0"


def portable_path(path: str | os.PathLike, root: str | os.PathLike = ".") -> str:
    """`path` relative to `root` (the study directory) when it lies inside it, else unchanged: records
    stay valid when a finished study is moved to another directory or machine."""
    text = str(path)
    if not os.path.isabs(text):
        return os.path.normpath(text)
    rel = os.path.relpath(text, os.path.abspath(root))
    return text if rel == ".." or rel.startswith(".." + os.sep) else rel


def sidecar_path(artifact: str | os.PathLike) -> Path:
    """Where the lineage record of a file or directory artifact lives."""
    path = Path(artifact)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def discard_records(outputs: Iterable[str | os.PathLike]) -> list[Path]:
    """Remove the records of the outputs a job is about to write; a job's first call.

    Snakemake deletes a job's outputs before running it, but not their sidecars: a job that then fails
    or is killed would leave a record beside a missing or half-written output. Removed at the start,
    a sidecar exists only once record_lineage wrote it, after every output of its job was complete.
    """
    removed = []
    for output in outputs:
        side = sidecar_path(output)
        if side.is_file():
            side.unlink()
            removed.append(side)
    if removed:
        log.info("lineage: removed %d record(s) of outputs this job rewrites", len(removed))
    return removed


def read_record(artifact: str | os.PathLike) -> dict[str, Any] | None:
    """The artifact's lineage record, or None when it has none (a raw source or an old artifact)."""
    side = sidecar_path(artifact)
    if not side.is_file():
        return None
    return read_json(side)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _file_entry(path: Path, rel: str, sha: str | None = None) -> dict[str, Any]:
    stat = path.stat()
    return {"path": rel, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha or sha256_file(path)}


def list_files(artifact: str | os.PathLike) -> list[tuple[str, Path]]:
    """(relative name, path) of a file artifact ("" names the file itself) or of every file in a directory."""
    root = Path(artifact)
    if root.is_file():
        return [("", root)]
    return [
        (p.relative_to(root).as_posix(), p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(SIDECAR_SUFFIX) and p.name not in IGNORED_NAMES
    ]


def tree_digest(files: Iterable[Mapping[str, Any]]) -> str:
    """One sha256 for an artifact from its files' names and hashes (a file's own hash when single)."""
    files = sorted(files, key=lambda f: f["path"])
    if len(files) == 1 and files[0]["path"] == "":
        return files[0]["sha256"]
    digest = hashlib.sha256()
    for entry in files:
        digest.update(entry["path"].encode())
        digest.update(entry["sha256"].encode())
    return digest.hexdigest()


def hash_artifact(artifact: str | os.PathLike, known: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Files, total size and digest of an artifact; `known` entries are reused where size and mtime match."""
    known = known or {}
    files = list_files(artifact)
    entries: list[dict[str, Any] | None] = []
    for rel, path in files:
        old = known.get(rel)
        stat = path.stat()
        same = old and old.get("size") == stat.st_size and old.get("mtime_ns") == stat.st_mtime_ns
        entries.append(dict(old) if same else None)
    reused = sum(e is not None for e in entries)
    todo = [i for i, e in enumerate(entries) if e is None]
    # hashlib releases the GIL on large buffers: checkpoint files hash in parallel
    with ThreadPoolExecutor(max_workers=max(1, min(HASH_THREADS, len(todo)))) as pool:
        for i, entry in zip(todo, pool.map(lambda i: _file_entry(files[i][1], files[i][0]), todo), strict=True):
            entries[i] = entry
    kind = "dir" if Path(artifact).is_dir() else "file"
    return {
        "path": str(artifact),
        "kind": kind,
        "sha256": tree_digest(entries),
        "size": sum(e["size"] for e in entries),
        "files": entries,
        "reused_hashes": reused,
    }


def recorded_hashes(artifact: str | os.PathLike) -> dict[str, str]:
    """sha256 by file path of an artifact's files that still have the size and mtime its lineage record holds
    (none without a record): a job that verified its inputs (provenance.integrity) hashed exactly these bytes,
    so its checks can reuse the hashes instead of reading every checkpoint again."""
    record = read_record(artifact)
    if record is None:
        return {}
    known = {f["path"]: f for f in record["artifact"]["files"]}
    hashes = {}
    for rel, path in list_files(artifact):
        entry, stat = known.get(rel), path.stat()
        if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
            hashes[str(path)] = entry["sha256"]
    return hashes


def record_hash(artifact: str | os.PathLike) -> str | None:
    """sha256 of the bytes of an artifact's lineage record (None without one): a consumer's record holds it
    for each input, so a record rewritten later (say, to match a hand-edited output) breaks that chain."""
    side = sidecar_path(artifact)
    return sha256_file(side) if side.is_file() else None


def describe_input(path: str, name: str, cache: HashCache) -> dict[str, Any]:
    """An input's path, sha256, lineage id and record hash, reusing its own record's hashes when the files are
    unchanged."""
    record = read_record(path)
    if record is not None:
        known = {f["path"]: f for f in record["artifact"]["files"]}
        art = hash_artifact(path, known)
        same = art["sha256"] == record["artifact"]["sha256"]
        return {
            "name": name,
            "path": path,
            "kind": art["kind"],
            "sha256": art["sha256"],
            "lineage_id": record["id"],
            "record_sha256": record_hash(path),
            "matches_record": same,
        }
    art = cache.hash(path)
    return {
        "name": name,
        "path": path,
        "kind": art["kind"],
        "sha256": art["sha256"],
        "lineage_id": None,
        "matches_record": None,
    }


class HashCache:
    """sha256 of raw sources and base models, keyed by path, size and mtime, in one JSON file."""

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path) if path else None
        self.entries: dict[str, dict[str, Any]] = {}
        if self.path and self.path.is_file():
            try:
                self.entries = read_json(self.path)
            except ValueError:
                self.entries = {}
        self.dirty = False

    def hash(self, artifact: str | os.PathLike) -> dict[str, Any]:
        key = os.path.abspath(artifact)
        known = {f["path"]: f for f in self.entries.get(key, {}).get("files", [])}
        art = hash_artifact(artifact, known)
        if art["reused_hashes"] != len(art["files"]):
            self.entries[key] = {"files": art["files"]}
            self.dirty = True
        return art

    def save(self) -> None:
        if self.path and self.dirty:
            write_json(self.path, self.entries)


def _git(repo: Path, *args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def code_version(script: str | os.PathLike | None, repo: str | os.PathLike | None = None) -> dict[str, Any]:
    """Git commit and dirty flag of the library's checkout, plus hashes of the library sources and the script
    (named relative to `repo`, by default the workflow that holds it: <repo>/workflow_scripts/<rule>.py)."""
    if repo is None and script:
        repo = Path(script).resolve().parent.parent
    repo = Path(repo) if repo else PKG_DIR  # git finds the checkout's top from any directory inside it
    sources = {p.relative_to(PKG_DIR).as_posix(): sha256_file(p) for p in sorted(PKG_DIR.rglob("*.py"))}
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    version: dict[str, Any] = {
        "git_commit": _git(repo, "rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "pkg_sha256": hashlib.sha256(canonical_json(sources).encode()).hexdigest(),
        "pkg_files": sources,
    }
    if script and Path(script).is_file():
        version["script"] = portable_path(script, repo)  # repository-relative, like params.code
        version["script_sha256"] = sha256_file(script)
    return version


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed versions of the packages that shape results (None when not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        if name == "python":
            versions[name] = platform.python_version()
            continue
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def wandb_run_id(outputs: Iterable[tuple[str, str]] = ()) -> str | None:
    """The W&B run id of the job: the one its run.json output records (the tracker has finished by the
    time lineage is recorded), else the active run's, else $WANDB_RUN_ID (never imports wandb itself)."""
    for _, path in outputs:
        if Path(path).name == RUN_METADATA and Path(path).is_file():
            tracked = (read_json(path).get("tracking") or {}).get("wandb_run_id")
            if tracked:
                return str(tracked)
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None) if wandb else None
    return getattr(run, "id", None) or os.environ.get("WANDB_RUN_ID")


def _process_start() -> str:
    try:
        import psutil

        started = psutil.Process().create_time()
    except Exception:  # psutil missing or no /proc: fall back to "unknown"
        return ""
    return dt.datetime.fromtimestamp(started, dt.timezone.utc).isoformat(timespec="seconds")


@dataclasses.dataclass
class JobInfo:
    """Plain values describing one finished job (built by the adapter from the snakemake object)."""

    rule: str
    wildcards: dict[str, str]
    inputs: list[tuple[str, str]]  # (name, path); unnamed inputs get "input_<i>"
    outputs: list[tuple[str, str]]
    params: dict[str, Any]
    logs: list[str] = dataclasses.field(default_factory=list)
    script: str | None = None
    started: str | None = None


def _named(io: Any, prefix: str) -> list[tuple[str, str]]:
    """(name, path) pairs of a snakemake Namedlist, flattening named lists of files."""
    names: dict[int, str] = {}
    for name, (start, end) in getattr(io, "_names", {}).items():
        for i in range(start, end or start + 1):
            names[i] = name if (end is None or end - start == 1) else f"{name}[{i - start}]"
    return [(names.get(i, f"{prefix}_{i}"), str(path)) for i, path in enumerate(io)]


def _param_value(value: Any) -> Any:
    import json

    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value if isinstance(value, (int, float, bool, type(None), list, dict)) else str(value)


def job_info(smk: Any, started: str | None = None) -> JobInfo:
    """Plain JobInfo from the `snakemake` object of a script job (duck-typed, no import)."""
    params = {name: _param_value(smk.params[name]) for name in getattr(smk.params, "_names", {})}
    scriptdir = getattr(smk, "scriptdir", None)
    script = os.path.normpath(Path(scriptdir) / f"{smk.rule}.py") if scriptdir else None
    return JobInfo(
        rule=str(smk.rule),
        wildcards={k: str(smk.wildcards[k]) for k in smk.wildcards.keys()},
        inputs=[(n, portable_path(p)) for n, p in _named(smk.input, "input")],
        outputs=[(n, portable_path(p)) for n, p in _named(smk.output, "output")],
        params=params,
        logs=[portable_path(p) for p in smk.log],
        script=script,
        started=started or _process_start(),
    )


def _base_models(params: Mapping[str, Any], cache: HashCache) -> list[dict[str, Any]]:
    model = params.get(MODEL_PARAM)
    if not isinstance(model, Mapping) or "name_or_path" not in model:
        return []
    from tunetrace.models.names import is_symbolic, resolve_model_path

    ref = model["name_or_path"]
    path = resolve_model_path(ref)
    if not Path(path).exists():  # a hub id: the revision is all we can record
        return [{"name": "base_model", "ref": ref, "path": None, "revision": model.get("revision")}]
    art = cache.hash(path)
    # where it lives on this machine is not recorded for a symbolic name: the audit resolves `ref` again
    where = ref if is_symbolic(ref) else portable_path(path)
    return [
        {
            "name": "base_model",
            "ref": ref,
            "path": where,
            "kind": art["kind"],
            "sha256": art["sha256"],
            "files": art["files"],
        }
    ]


def build_records(job: JobInfo, cache: HashCache) -> dict[str, dict[str, Any]]:
    """One lineage record per declared output of the finished job, keyed by output path."""
    shared = {
        "schema": SCHEMA,
        "rule": job.rule,
        "wildcards": job.wildcards,
        "inputs": [describe_input(path, name, cache) for name, path in job.inputs],
        "sources": _base_models(job.params, cache),
        "params": job.params,
        "code": code_version(job.script),
        "packages": package_versions(),
        "seed": int(job.wildcards["seed"]) if "seed" in job.wildcards else None,
        "host": socket.gethostname(),
        "started": job.started,
        "finished": _now(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "wandb_run_id": wandb_run_id(job.outputs),
        "logs": job.logs,
    }
    artifacts = {path: hash_artifact(path) for _, path in job.outputs}
    for art in artifacts.values():
        art.pop("reused_hashes")
    records = {}
    for name, path in job.outputs:
        siblings = [{"path": p, "sha256": a["sha256"]} for p, a in artifacts.items() if p != path]
        record = {**shared, "output_name": name, "artifact": artifacts[path], "siblings": siblings}
        record["id"] = hashlib.sha256(canonical_json(record).encode()).hexdigest()[:20]
        records[path] = record
    return records


def write_records(records: Mapping[str, Mapping[str, Any]]) -> None:
    """Write each record to its output's sidecar (atomically)."""
    for path, record in records.items():
        write_json(sidecar_path(path), record)


def cache_path(workdir: str | os.PathLike = ".") -> Path:
    """The hash cache of raw sources and base models for a working directory."""
    return Path(workdir) / "results" / ".lineage_hash_cache.json"


def record_lineage(smk: Any, started: str | None = None) -> dict[str, dict[str, Any]]:
    """Adapter entry point: write the sidecars of every output of the current script job.

    TUNETRACE_LINEAGE=0 in the environment skips recording (for overhead benchmarks only).
    """
    if not recording_enabled():
        log.warning("lineage: recording disabled by TUNETRACE_LINEAGE=0")
        return {}
    clock = time.perf_counter()
    job = job_info(smk, started)
    cache = HashCache(cache_path())
    records = build_records(job, cache)
    write_records(records)
    cache.save()
    log.info("lineage: recorded %d output(s) of %s in %.3f s", len(records), job.rule, time.perf_counter() - clock)
    return records
