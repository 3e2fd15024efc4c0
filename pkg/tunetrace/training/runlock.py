"""One trainer per run: an exclusive lock on the run's resume directory, held for the whole training.

Two trainers on one resume directory corrupt it: both write `checkpoint-N/`, the one that finishes
first exports the run and deletes the directory, and the other crashes or resumes from nothing. That
happens when snakemake is killed without its job (the orphan trains on) and a new snakemake is
started after `snakemake --unlock`. The lock is `fcntl.flock` on `run.lock` in the resume directory;
the kernel releases it when its holder exits however it dies, so a lock file that can be taken is
stale by definition and is taken over (and logged). The holder's pid, host and start time are
written into the file so that a refused trainer can say who holds the run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOCK_FILE = "run.lock"


class RunLocked(RuntimeError):
    """Another live process is training this run."""


def lock_path(state_dir: str | os.PathLike) -> Path:
    """The lock file of a run's resume directory."""
    return Path(state_dir) / LOCK_FILE


@contextlib.contextmanager
def run_lock(state_dir: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """Hold the run's lock while the block runs; yield what was recorded in it (pid, host, since).

    Raises RunLocked at once, touching nothing, when a live process holds it.
    """
    path = lock_path(state_dir)
    fd, previous = _acquire(path)
    try:
        holder = _record(fd)
        if previous:
            log.warning(
                "%s: took over a stale lock: its holder (pid %s on %s since %s) is gone; "
                "resuming from the last complete checkpoint it left",
                path,
                previous.get("pid"),
                previous.get("host"),
                previous.get("since"),
            )
        yield holder
    finally:
        _release(fd)


def _acquire(path: Path) -> tuple[int, dict[str, Any]]:
    """flock the lock file; return its descriptor and the stale holder record found in it (may be empty)."""
    for _ in range(10):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise RunLocked(_refusal(path, holder)) from None
        # The finished run removes its resume directory, lock file included, while holding the lock;
        # a lock taken on that removed file guards nothing, so take the one now at `path` instead.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd, _read(fd)
        os.close(fd)
    raise RuntimeError(f"{path}: the lock file keeps being replaced; is another tool removing {path.parent}?")


def _refusal(path: Path, holder: dict[str, Any]) -> str:
    who = (
        f"pid {holder.get('pid')} on host {holder.get('host')} (training since {holder.get('since')})"
        if holder
        else "a process that has not recorded itself yet"
    )
    where = f"on {holder.get('host')}: kill {holder.get('pid')}" if holder else f"see `fuser {path}`"
    return (
        f"{path.parent}: this run is already being trained by {who}; it holds {path}. A second trainer "
        "on the same resume directory would corrupt it, so this one stopped before touching it. Wait "
        f"for that job to finish, or stop it ({where}) and rerun: the run resumes from its last "
        "complete checkpoint."
    )


def _read(fd: int) -> dict[str, Any]:
    """The holder record in the lock file ({} when empty or unreadable: written by nobody, or cut off)."""
    text = os.pread(fd, 65536, 0).decode("utf-8", errors="replace").strip()
    try:
        record = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}
    return record if isinstance(record, dict) else {}


def _record(fd: int) -> dict[str, Any]:
    """Write this process as the holder. In place, not by rename: the lock belongs to this inode."""
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv)[:500],
    }
    data = (json.dumps(holder, sort_keys=True) + "\n").encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)
    return holder


def _release(fd: int) -> None:
    """Empty the file (a later taker then finds no stale holder), unlock, close."""
    try:
        os.ftruncate(fd, 0)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
