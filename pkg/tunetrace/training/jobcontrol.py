"""A training job as a process: it dies with its parent, stops within a step on SIGINT/SIGTERM, takes
its launched ranks along, and logs one line per logging step instead of progress-bar redraws.

Why each piece exists:
- `kill -9` of snakemake left the training child running; the orphan went on writing the resume
  directory that the next job resumed from. `run_as_job` asks the kernel (Linux prctl
  PR_SET_PDEATHSIG) to send SIGTERM to the job when its parent dies, and launched ranks do the same
  with their launcher, so the whole tree goes. The kernel ties that signal to the parent *thread*
  that started the process, and sends it again as each thread of a dying parent exits: Snakemake's
  worker thread waits for its job as long as the job lives, and repeated SIGTERMs count as one.
- Ctrl-C must stop training in seconds and fail the job. A bare KeyboardInterrupt can land anywhere
  (inside a log rewrite, a checkpoint save); instead the handler records the signal, passes it on to
  launched ranks, and `stop_callback` raises `TrainingStopped` at the end of the current step (or
  evaluation batch). A job that does not get there within `STOP_GRACE_S` exits hard; a second
  Ctrl-C exits at once. Every checkpoint is marked complete only after it is written, so neither
  path can leave a checkpoint that a rerun would trust.
- A job's stderr is its log file: tqdm redraws land there as carriage-return spam. When stderr is
  not a terminal the Trainer's bar is off and `progress_callback` logs one line per logging step.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from tunetrace.logutil import stderr_is_terminal

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# how long a stop may wait for the end of a step (a checkpoint save, a long step) before exiting hard
STOP_GRACE_S = 10.0


class TrainingStopped(RuntimeError):
    """Training was stopped by a signal; the job fails and a rerun resumes from the last checkpoint."""


class _StopState:
    """The signal received (None: none) and the launched process groups it is passed on to."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.parent = os.getppid()
        self.children: list[subprocess.Popen] = []


_STATE = _StopState()


def _prctl() -> Callable[..., int] | None:
    """libc's prctl, or None off Linux (there the job outlives a killed parent)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Have the kernel send `sig` to this process when its parent exits; False where unsupported."""
    prctl = _prctl()
    parent = os.getppid()
    if prctl is None or prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        log.warning(
            "cannot tie this process to its parent (no prctl PR_SET_PDEATHSIG here): if the "
            "parent is killed, stop this job yourself (pid %d)",
            os.getpid(),
        )
        return False
    _STATE.parent = parent
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), sig)
    return True


def child_preexec() -> Callable[[], None] | None:
    """A `preexec_fn` giving a launched child SIGTERM when this process dies (None off Linux). The
    function only calls prctl, resolved beforehand: nothing else is safe between fork and exec."""
    prctl = _prctl()
    if prctl is None:
        return None

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)

    return preexec


def run_as_job(grace_s: float = STOP_GRACE_S) -> None:
    """Make this process a well-behaved training job: it dies with its parent, and SIGINT/SIGTERM stop
    training at the end of the current step (see the module docstring). Call once, from the main thread."""
    die_with_parent()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda signum, _frame: _on_signal(signum, grace_s))


def _on_signal(signum: int, grace_s: float) -> None:
    name = signal.Signals(signum).name
    if _STATE.signum is not None:
        # A second Ctrl-C means "now". Repeated SIGTERMs do not: the parent-death signal comes once per
        # parent thread as a killed parent's threads exit, and the grace timer bounds the wait anyway.
        if signum == signal.SIGINT:
            log.error("%s again: exiting now", name)
            _kill_children(signal.SIGKILL)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        return
    _STATE.signum = signum
    log.warning(
        "%s received: stopping training at the end of this step (at most %.0f s); the job fails and a "
        "rerun resumes from the last complete checkpoint",
        name,
        grace_s,
    )
    _kill_children(signum)
    timer = threading.Timer(grace_s, _hard_exit, args=(signum, grace_s))
    timer.daemon = True
    timer.start()


def _hard_exit(signum: int, grace_s: float) -> None:
    log.error("training did not stop within %.0f s of %s; exiting now", grace_s, signal.Signals(signum).name)
    _kill_children(signal.SIGKILL)
    sys.stderr.flush()
    os._exit(128 + signum)


def track_child(proc: subprocess.Popen) -> None:
    """Pass stop signals on to `proc`'s process group (started with start_new_session=True)."""
    _STATE.children.append(proc)
    if _STATE.signum is not None:  # the signal came while it was being started
        _kill_children(_STATE.signum)


def untrack_child(proc: subprocess.Popen) -> None:
    if proc in _STATE.children:
        _STATE.children.remove(proc)


def _kill_children(sig: int) -> None:
    for proc in list(_STATE.children):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass


def _parent_gone(wait_s: float) -> bool:
    """Whether this process was re-parented. The parent-death signal comes when the parent's first thread
    exits; its other threads (and so the re-parenting) can take a moment longer on a loaded machine, so a
    SIGTERM looks for it up to `wait_s`. Only for the message: stopping does not depend on it."""
    deadline = time.monotonic() + (wait_s if _STATE.signum == signal.SIGTERM else 0.0)
    while True:
        if os.getppid() != _STATE.parent:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def raise_if_stopped(where: str) -> None:
    """Raise TrainingStopped when a stop signal arrived (`where`: what was running)."""
    if _STATE.signum is not None:
        orphaned = _parent_gone(wait_s=1.0)
        raise TrainingStopped(
            f"{signal.Signals(_STATE.signum).name} received"
            f"{f' (the parent process {_STATE.parent} is gone)' if orphaned else ''}: "
            f"training stopped {where}; rerun the job to resume from the last complete checkpoint"
        )


def stop_callback() -> Any:
    """A TrainerCallback raising TrainingStopped at the first step end (or evaluation batch) after a stop
    signal. Raising, not control.should_training_stop: that would still run on_train_end, where the
    representation capture and best-model reload treat the cut-off run as finished."""
    from transformers import TrainerCallback

    class StopCallback(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            raise_if_stopped(f"after step {state.global_step}")

        def on_prediction_step(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            raise_if_stopped(f"during an evaluation at step {state.global_step}")

    return StopCallback()


def progress_bar_wanted() -> bool:
    """Progress bars only on a terminal; a log file gets `progress_callback`'s lines instead."""
    return stderr_is_terminal()


def progress_callback() -> Any:
    """A TrainerCallback logging one line per logging step (main process only): step, loss, rate."""
    from transformers import TrainerCallback

    class ProgressLogCallback(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
            if not state.is_world_process_zero:
                return
            values = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in (logs or {}).items())
            log.info("step %d/%d: %s", state.global_step, state.max_steps, values)

    return ProgressLogCallback()
