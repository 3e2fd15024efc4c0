"""Logging setup shared by workflow scripts and the CLI."""

from __future__ import annotations

import atexit
import datetime as dt
import gc
import logging
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

# The first line each process writes into a job's log: attempts are told apart by it and counted by it.
ATTEMPT_HEADER = "===== tunetrace attempt"


def setup_logging(
    log_file: str | os.PathLike | None = None, level: int = logging.INFO, capture_stderr: bool = False
) -> None:
    """Log to `log_file` (when given) and to stderr, with timestamps.

    With `capture_stderr`, file descriptor 2 itself is sent to the log file, so progress bars,
    library warnings and tracebacks of a workflow job land in its log rather than interleaving
    on the terminal with other jobs.

    The log is appended to, never truncated, and each process starts its part with a header line
    (attempt_header): a requeued job keeps its earlier attempts, and a second process refused by a
    live one (training.runlock) adds its refusal below the live one's lines instead of erasing them.
    The lines go to `<log>.attempts`, which the log path links to (link_to_attempts): Snakemake removes a job's
    declared log before each run of it (a retry, a Slurm requeue), and that removes the link, not the attempts.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        os.makedirs(os.path.dirname(os.path.abspath(log_file)), exist_ok=True)
        link_to_attempts(log_file)
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.write(fd, (attempt_header(log_file) + "\n").encode())
        if capture_stderr:
            sys.stderr.flush()
            os.dup2(fd, 2)
            os.close(fd)
        else:
            os.close(fd)
            handlers.append(logging.FileHandler(log_file, mode="a", encoding="utf-8"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)
    if not stderr_is_terminal():
        quiet_progress_bars()
    if log_file:  # the job's first timestamp: the benchmarks take start-up + imports up to this line
        logging.getLogger(__name__).info("logging to %s (pid %d)", log_file, os.getpid())
    skip_exit_collection()


ATTEMPTS_SUFFIX = ".attempts"


def link_to_attempts(log_file: str | os.PathLike) -> Path:
    """Make `log_file` a symlink to `<name>.attempts` beside it (created empty if need be) and return that file.

    A regular file already at `log_file` (a log of an older tunetrace, or of a job that ran without this) is added
    to the end of the attempts file first. Two processes linking at once (a trainer and one refused by its lock)
    end with the same link. Where symlinks cannot be made, `log_file` stays a plain file (appended, as before)."""
    path = Path(log_file)
    attempts = path.with_name(path.name + ATTEMPTS_SUFFIX)
    if path.is_symlink():
        return attempts
    try:
        if path.exists():
            with attempts.open("ab") as sink, path.open("rb") as source:
                sink.write(source.read())
            path.unlink()
        attempts.touch()
        path.symlink_to(attempts.name)
    except FileExistsError:
        if not path.is_symlink():
            raise
    except OSError:  # no symlinks here: the plain log file, appended
        return path
    return attempts


def attempt_header(log_file: str | os.PathLike, env: Mapping[str, str] | None = None) -> str:
    """The header of this process's part of `log_file`: the attempt (one more than the headers already in
    the file), the Slurm job id and restart count when under Slurm, host, time and pid."""
    env = os.environ if env is None else env
    attempt = 1 + count_attempts(log_file)
    slurm = (
        f" slurm job {env['SLURM_JOB_ID']} restart {env.get('SLURM_RESTART_COUNT', '0')}"
        if env.get("SLURM_JOB_ID")
        else ""
    )
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return f"{ATTEMPT_HEADER} {attempt}{slurm} host {socket.gethostname()} at {now} pid {os.getpid()} ====="


def count_attempts(log_file: str | os.PathLike) -> int:
    """How many processes have started writing `log_file` (its header lines; 0 when it does not exist)."""
    try:
        with Path(log_file).open(encoding="utf-8", errors="replace") as handle:
            return sum(line.startswith(ATTEMPT_HEADER) for line in handle)
    except FileNotFoundError:
        return 0


def skip_exit_collection() -> None:
    """Spare this process the garbage collection over every live object when the interpreter exits.

    After importing torch and transformers' Trainer a process holds millions of objects, and the collection CPython runs
    while tearing the process down is a visible part of a short job's wall time; moving them to the permanent
    generation (`gc.freeze`) first skips most of it (bench/RESULTS.md). The Snakefile calls it for Snakemake's own
    process too. Nothing is lost: every atexit handler still runs (objects they create are not frozen), objects
    freed by reference counting are still freed, every output of a job is closed and hashed (lineage) before its
    script ends, and what the skipped collection would reclaim is memory the exit returns anyway. Idempotent: a
    process calling it again still freezes once."""
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)


def stderr_is_terminal() -> bool:
    """True when stderr (file descriptor 2) is a terminal: progress bars are for people watching."""
    try:
        return os.isatty(2)
    except OSError:
        return False


def quiet_progress_bars() -> None:
    """No tqdm bars: in a log file each redraw is a carriage-return fragment (weight loading, shard
    writing, dataset maps). Environment variables reach libraries imported later and launched child
    processes; libraries already imported are switched off directly."""
    for name in ("TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        os.environ[name] = "1"
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils.logging import disable_progress_bar

        disable_progress_bar()
