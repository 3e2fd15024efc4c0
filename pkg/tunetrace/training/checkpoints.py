"""Resumable training state: complete-checkpoint markers, fingerprints, export of finished runs.

A training job may be killed at any moment (SIGKILL, Slurm time limit, node failure). Hugging Face
Trainer writes `checkpoint-N/` in place, so a killed job can leave a half-written one behind. We
write a marker file last, atomically, after the Trainer has finished saving; only directories
with the marker count as complete. The resume directory lives outside the rule's declared
outputs (Snakemake deletes those before rerunning a job) and carries a fingerprint of the run's
inputs, so a changed config never resumes from a stale state.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

from tunetrace.fileio import canonical_json, read_json, sha256_file, write_json

log = logging.getLogger(__name__)

COMPLETE_MARKER = "tunetrace_complete.json"
FINGERPRINT = "fingerprint.json"
TRAINER_STATE = "trainer_state.json"
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
        log.warning("removed incomplete checkpoint %s (written by a job that was killed)", path)
    return removed


def write_marker(checkpoint_dir: str | os.PathLike, info: dict[str, Any]) -> None:
    """Mark a checkpoint complete: fsync its files, then write the marker atomically (last)."""
    checkpoint_dir = Path(checkpoint_dir)
    for item in checkpoint_dir.rglob("*"):
        if item.is_file():
            with open(item, "rb") as handle:
                os.fsync(handle.fileno())
    write_json(checkpoint_dir / COMPLETE_MARKER, info)


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
    never mix two configurations.
    """
    root = Path(state_dir)
    stamp = root / FINGERPRINT
    if root.exists() and (not stamp.is_file() or read_json(stamp).get("fingerprint") != fingerprint):
        log.warning("resume state %s belongs to other inputs; starting from scratch", root)
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    if not stamp.is_file():
        write_json(stamp, {"fingerprint": fingerprint})
    remove_incomplete(root)
    return last_complete_checkpoint(root)


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
