"""Resumable training state: complete-checkpoint markers, fingerprints, export of finished runs.

A training job may be killed at any moment (SIGKILL, Slurm time limit, node failure). Hugging Face
Trainer writes `checkpoint-N/` in place, so a killed job can leave a half-written one behind. We
write a marker file last, atomically, after the Trainer has finished saving; only directories
with the marker count as complete. The resume directory lives outside the rule's declared
outputs (Snakemake deletes those before rerunning a job) and carries a fingerprint of the run's
inputs, so a changed config never resumes from a stale state.

A marked checkpoint can still be damaged afterwards (a truncated copy, a full or failing disk), and
resuming from it fails on every rerun. Before resuming, the candidate's files are checked against
its `checksums.json` and its safetensors headers are parsed (no tensor is loaded); a checkpoint that
fails is set aside, never deleted (`set_aside/checkpoint-N.corrupt-<time>/`, out of the Trainer's
sight: it rotates every `checkpoint-*` it finds), and the newest one that verifies is resumed from.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import struct
import threading
import time
from pathlib import Path
from typing import Any

from tunetrace.artifacts import CHECKSUMS
from tunetrace.fileio import canonical_json, read_json, sha256_file, write_json
from tunetrace.training.runlock import LOCK_FILE  # one trainer per resume directory

log = logging.getLogger(__name__)

COMPLETE_MARKER = "tunetrace_complete.json"
FINGERPRINT = "fingerprint.json"
TRAINER_STATE = "trainer_state.json"
SET_ASIDE_DIR = "set_aside"  # checkpoints that failed verification, kept for inspection
SET_ASIDE_NOTE = "tunetrace_set_aside.json"
# kept when a resume directory is wiped or removed: the live holder's lock, and evidence
KEEP_NAMES = (LOCK_FILE, SET_ASIDE_DIR)
MAX_SAFETENSORS_HEADER = 100 * 2**20  # the format's own limit on the JSON header
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_step(path: str | os.PathLike) -> int | None:
    """The step of a `checkpoint-N` directory name, or None for anything else."""
    match = _CHECKPOINT_RE.match(Path(path).name)
    return int(match.group(1)) if match else None


def is_complete(path: str | os.PathLike) -> bool:
    """True when the Trainer finished writing this checkpoint (our marker and its state exist)."""
    path = Path(path)
    return (path / COMPLETE_MARKER).is_file() and (path / TRAINER_STATE).is_file()


def complete_checkpoints(state_dir: str | os.PathLike) -> list[Path]:
    """Complete `checkpoint-N` directories under `state_dir`, oldest step first."""
    root = Path(state_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and checkpoint_step(p) is not None and is_complete(p)]
    return sorted(found, key=lambda p: checkpoint_step(p) or 0)


def last_complete_checkpoint(state_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint, or None when training must start from scratch."""
    done = complete_checkpoints(state_dir)
    return done[-1] if done else None


def remove_incomplete(state_dir: str | os.PathLike) -> list[Path]:
    """Delete half-written checkpoint directories (no marker), so nothing can mistake them for complete."""
    root = Path(state_dir)
    removed = []
    if root.is_dir():
        for path in root.iterdir():
            if path.is_dir() and checkpoint_step(path) is not None and not is_complete(path):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    for path in removed:
        log.warning(
            "removed incomplete checkpoint %s (its save never finished: the job that wrote it stopped "
            "during the save%s)",
            path,
            _low_space_hint(root),
        )
    return removed


# free space kept beyond a write's estimated size: logs, the marker, filesystem overhead
SPACE_MARGIN = 64 * 2**20


class DiskFull(OSError):
    """Not enough free space for a write the job is about to make; nothing was written."""


def _low_space_hint(path: Path) -> str:
    """Why a save may not have finished, when the disk says so (not every stopped save was a killed job)."""
    try:
        free = shutil.disk_usage(path if path.exists() else path.parent).free
    except OSError:
        return ", killed or failed"
    return (
        f"; only {free} bytes are free there now, so it likely ran out of disk space"
        if free < 2**30
        else ", killed or failed"
    )


def estimate_checkpoint_bytes(model: Any, state_dir: str | os.PathLike | None = None, optimizer: bool = True) -> int:
    """Bytes a save will take: the newest complete checkpoint's size when there is one, else the trainable
    weights (what the Trainer saves of a LoRA or a full run) plus, for a checkpoint, two float32 optimizer states
    per trainable parameter (Adam)."""
    last = last_complete_checkpoint(state_dir) if state_dir else None
    if last is not None:
        return sum(p.stat().st_size for p in last.rglob("*") if p.is_file())
    extra = 8 if optimizer else 0
    return sum(p.numel() * (p.element_size() + extra) for p in model.parameters() if p.requires_grad)


def ensure_free_space(path: str | os.PathLike, needed: int, what: str) -> None:
    """Raise DiskFull naming the path, the bytes needed and free, and the fix, before a write that cannot fit."""
    where = Path(path)
    probe = next((p for p in (where, *where.parents) if p.exists()), Path("."))
    free = shutil.disk_usage(probe).free
    if free >= needed + SPACE_MARGIN:
        return
    raise DiskFull(
        f"disk full: {what} at {where} needs about {needed} bytes (+{SPACE_MARGIN} margin) and the "
        f"filesystem holding {probe} has {free} bytes free; free space there (old studies' results/, "
        f"set_aside/ checkpoints) or move the study to a bigger disk, then rerun (training resumes from "
        f"the last complete checkpoint)"
    )


def write_checksums(directory: str | os.PathLike) -> dict[str, str]:
    """Record the sha256 of every file in a checkpoint or model directory in its checksums.json."""
    root = Path(directory)
    sums = {
        p.relative_to(root).as_posix(): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != CHECKSUMS
    }
    write_json(root / CHECKSUMS, sums)
    return sums


def write_marker(checkpoint_dir: str | os.PathLike, info: dict[str, Any]) -> None:
    """Mark a checkpoint complete: fsync its files, then write the marker atomically (last)."""
    checkpoint_dir = Path(checkpoint_dir)
    for item in checkpoint_dir.rglob("*"):
        if item.is_file():
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())
    write_json(checkpoint_dir / COMPLETE_MARKER, info)


def complete_checkpoint(checkpoint_dir: str | os.PathLike, info: dict[str, Any]) -> None:
    """What makes a saved checkpoint resumable, in order: checksums of its files, every file on disk, the marker."""
    if not Path(checkpoint_dir).is_dir():  # deleted under the finisher: never leave a marker-only directory
        raise FileNotFoundError(f"{checkpoint_dir}: the saved checkpoint is gone before it was completed")
    started = time.perf_counter()
    write_checksums(checkpoint_dir)
    hashed = time.perf_counter()
    write_marker(checkpoint_dir, info)
    log.info(
        "completed %s: checksums %.2f s, fsync and marker %.2f s",
        Path(checkpoint_dir).name,
        hashed - started,
        time.perf_counter() - hashed,
    )


class Finisher:
    """Completes each saved checkpoint (complete_checkpoint) on a thread of its own while training goes on.

    Hashing and syncing a full fine-tuning checkpoint (weights and optimizer state, 3x the model) took about 4 % of
    the demo's training time when done inline. A checkpoint counts only once its marker exists, so a job killed
    before the thread ends leaves an incomplete checkpoint, removed at resume, as before. `wait()` joins the
    thread and raises its error; callers wait before the Trainer saves or deletes (save_total_limit) a checkpoint,
    at the end of training, and when training raises, so no two finishers run and none reads a deleted file.
    """

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def start(self, checkpoint_dir: str | os.PathLike, info: dict[str, Any]) -> None:
        self.wait()
        self._thread = threading.Thread(target=self._run, args=(Path(checkpoint_dir), info), name="checkpoint-finisher")
        self._thread.start()

    def _run(self, checkpoint_dir: Path, info: dict[str, Any]) -> None:
        try:
            complete_checkpoint(checkpoint_dir, info)
        except BaseException as err:  # noqa: BLE001 - re-raised on the training thread by wait()
            self._error = err

    def wait(self) -> None:
        if self._thread is not None:
            started = time.perf_counter()
            alive = self._thread.is_alive()
            self._thread.join()
            self._thread = None
            if alive:  # training stood still for it: worth knowing when a step time looks long
                log.info("waited %.2f s for the previous checkpoint to be completed", time.perf_counter() - started)
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def read_marker(checkpoint_dir: str | os.PathLike) -> dict[str, Any]:
    """The marker written when the checkpoint was completed."""
    return read_json(Path(checkpoint_dir) / COMPLETE_MARKER)


def run_fingerprint(slices: dict[str, Any], data_files: list[str | os.PathLike]) -> str:
    """Canonical description of what a run's state depends on: config slices and data hashes."""
    data = {Path(f).name: sha256_file(f) for f in data_files}
    return canonical_json({"config": slices, "data": data})


def prepare_state_dir(state_dir: str | os.PathLike, fingerprint: str) -> Path | None:
    """Make `state_dir` ready to train into; return the checkpoint to resume from, if any.

    A state directory written for other inputs (different fingerprint) is wiped, so resuming can
    never mix two configurations. Half-written checkpoints are removed; complete ones that fail
    verification are set aside, newest first, until one verifies.
    """
    root = Path(state_dir)
    stamp = root / FINGERPRINT
    if _has_state(root) and (not stamp.is_file() or read_json(stamp).get("fingerprint") != fingerprint):
        log.warning("resume state %s belongs to other inputs; starting from scratch", root)
        clear_state(root, finished=False)
    root.mkdir(parents=True, exist_ok=True)
    if not stamp.is_file():
        write_json(stamp, {"fingerprint": fingerprint})
    remove_incomplete(root)
    return newest_verified_checkpoint(root, fingerprint)


def _has_state(root: Path) -> bool:
    return root.is_dir() and any(p.name not in KEEP_NAMES for p in root.iterdir())


def clear_state(state_dir: str | os.PathLike, finished: bool) -> None:
    """Remove a resume directory's training state, keeping its lock (held by the trainer calling this)
    and its set-aside checkpoints. Once the run is `finished`, the directory goes too, lock included,
    unless set-aside checkpoints are left in it."""
    root = Path(state_dir)
    if not root.is_dir():
        return
    for path in root.iterdir():
        if path.name in KEEP_NAMES:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    aside = root / SET_ASIDE_DIR
    if finished and not (aside.is_dir() and any(aside.iterdir())):
        shutil.rmtree(root)  # the lock file with it: its holder keeps the inode (see runlock)


def newest_verified_checkpoint(state_dir: str | os.PathLike, fingerprint: str = "") -> Path | None:
    """The newest complete checkpoint whose files verify; the ones above it that do not are set aside."""
    damaged = 0
    for checkpoint in reversed(complete_checkpoints(state_dir)):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint
        damaged += 1
        target = set_aside(checkpoint, problem, fingerprint)
        log.error(
            "checkpoint %s is damaged (%s); set aside as %s, trying the one before", checkpoint.name, problem, target
        )
    if damaged:
        log.warning(
            "%s: none of its %d complete checkpoint(s) verifies (all set aside); training starts from scratch",
            state_dir,
            damaged,
        )
    return None


def checkpoint_problem(checkpoint: str | os.PathLike) -> str | None:
    """What is wrong with a complete checkpoint's files (None: nothing): sha256 against its
    checksums.json, safetensors headers against the file sizes, JSON files parse."""
    root = Path(checkpoint)
    sums_path = root / CHECKSUMS
    try:
        sums = read_json(sums_path) if sums_path.is_file() else {}
    except ValueError as err:
        return f"{CHECKSUMS}: {err}"
    for rel, expected in sorted(sums.items()):
        path = root / rel
        if not path.is_file():
            return f"{rel}: listed in {CHECKSUMS} but missing"
        if sha256_file(path) != expected:
            return f"{rel}: sha256 differs from {CHECKSUMS} (the file changed after it was saved)"
    for path in sorted(root.rglob("*")):
        problem = _file_problem(path) if path.is_file() else None
        if problem:
            return f"{path.relative_to(root).as_posix()}: {problem}"
    return None


def _file_problem(path: Path) -> str | None:
    if path.suffix == ".safetensors":
        return safetensors_problem(path)
    if path.suffix == ".json":
        try:
            read_json(path)
        except ValueError as err:
            return str(err)
    return None


def safetensors_problem(path: str | os.PathLike) -> str | None:
    """Check a safetensors file's header without loading a tensor: an 8-byte little-endian header
    length, that many bytes of JSON, and tensor data that ends exactly at the end of the file."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        head = handle.read(8)
        if len(head) < 8:
            return f"{size} bytes: too short for a safetensors header"
        length = struct.unpack("<Q", head)[0]
        if length > MAX_SAFETENSORS_HEADER:
            return f"header length {length} is beyond the format's limit: not a safetensors file"
        if length > size - 8:
            return f"header length {length} exceeds the file ({size} bytes): truncated"
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            return f"header is not valid JSON ({err})"
    if not isinstance(header, dict):
        return "header is not a JSON object"
    ends = [
        int(v["data_offsets"][1])
        for k, v in header.items()
        if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v
    ]
    expected = 8 + length + max(ends, default=0)
    if expected != size:
        return f"tensor data should end at byte {expected} but the file has {size} bytes (truncated or padded)"
    return None


def set_aside(checkpoint: str | os.PathLike, problem: str, fingerprint: str = "") -> Path:
    """Move a damaged checkpoint to `set_aside/<name>.corrupt-<UTC time>/` with a note saying why."""
    checkpoint = Path(checkpoint)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    target = checkpoint.parent / SET_ASIDE_DIR / f"{checkpoint.name}.corrupt-{stamp}"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(checkpoint, target)
    write_json(
        target / SET_ASIDE_NOTE,
        {"checkpoint": checkpoint.name, "problem": problem, "set_aside_at": stamp, "fingerprint": _digest(fingerprint)},
    )
    return target


def _digest(fingerprint: str) -> str:
    return hashlib.sha256(fingerprint.encode()).hexdigest()


def set_aside_checkpoints(state_dir: str | os.PathLike, fingerprint: str | None = None) -> list[dict[str, Any]]:
    """The checkpoints set aside in a resume directory (only those of `fingerprint`'s inputs when given),
    oldest first: checkpoint name, where it is now, the problem found and when."""
    aside = Path(state_dir) / SET_ASIDE_DIR
    found = []
    for path in sorted(aside.iterdir()) if aside.is_dir() else []:
        note_path = path / SET_ASIDE_NOTE
        note = read_json(note_path) if note_path.is_file() else {}
        if fingerprint is None or note.get("fingerprint") == _digest(fingerprint):
            found.append(
                {
                    "checkpoint": note.get("checkpoint", path.name),
                    "path": str(path),
                    "problem": note.get("problem"),
                    "set_aside_at": note.get("set_aside_at"),
                }
            )
    return sorted(found, key=lambda item: str(item["set_aside_at"]))


def truncate_log(path: str | os.PathLike, last_step: int) -> int:
    """Keep only JSONL records with step <= last_step (the rest are recomputed after resume)."""
    path = Path(path)
    if not path.is_file():
        return 0
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut off by the kill
        if int(record.get("step", 0)) <= last_step:
            kept.append(line)
    path.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
    return len(kept)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def export_checkpoints(state_dir: str | os.PathLike, out_dir: str | os.PathLike) -> list[Path]:
    """Hard-link (or copy) the complete checkpoints into the run's declared `checkpoints/` output."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    exported = []
    for checkpoint in complete_checkpoints(state_dir):
        target = out / checkpoint.name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(checkpoint, target, copy_function=_link_or_copy)
        exported.append(target)
    return exported
