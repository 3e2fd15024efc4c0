"""logutil: a job's logging setup and its exit."""

import os
import subprocess
import sys

from conftest import REPO

# Run in a child interpreter: atexit handlers and the GC's generations are per process. gc.freeze is wrapped to
# count its calls at exit.
EXIT_PROBE = """
import atexit, gc, sys
calls, freeze = [], gc.freeze
gc.freeze = lambda: (calls.append(1), freeze())[1]
from tunetrace.logutil import setup_logging, skip_exit_collection
setup_logging(sys.argv[1])  # registers the freeze
skip_exit_collection()  # a second call: still one freeze at exit
assert gc.get_freeze_count() == 0, "nothing is frozen before the exit"
atexit._run_exitfuncs()
print(len(calls), gc.get_freeze_count() > 0)
"""


def test_job_exit_skips_the_final_collection_once(tmp_path):
    """A job process freezes its live objects at exit (the collection CPython runs on teardown then skips them),
    once however often logging is set up."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "pkg")}
    out = subprocess.run(
        [sys.executable, "-c", EXIT_PROBE, str(tmp_path / "job.log")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["1", "True"]


# A job process: sets up its log as a workflow script does, then either holds the run's lock (writing a line
# before and after the second process came) or is refused it.
JOB = """
import logging, sys, time
from pathlib import Path
from tunetrace.logutil import setup_logging
from tunetrace.training.runlock import RunLocked, run_lock
log_file, state, role = sys.argv[1:4]
setup_logging(log_file, capture_stderr=True)
log = logging.getLogger("job")
if role == "live":
    with run_lock(state):
        log.info("live trainer: step 1")
        print("locked", flush=True)
        sys.stdin.readline()  # until the refused one has come and gone
        log.info("live trainer: step 2")
elif role == "second":
    try:
        with run_lock(state):
            log.info("second trainer trained")
    except RunLocked as err:
        log.error("refused: %s", err)
else:
    log.info("attempt body %s", role)
"""


def _job(tmp_path, role, slurm=None, **kwargs):
    """One job process (`slurm`: its Slurm variables, none when not given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env.update(PYTHONPATH=str(REPO / "pkg"), **(slurm or {}))
    args = [sys.executable, "-c", JOB, str(tmp_path / "job.log"), str(tmp_path / "state"), role]
    return subprocess.Popen(args, env=env, text=True, **kwargs)


def test_refused_second_trainer_leaves_the_live_log_intact(tmp_path):
    """A second trainer refused by the run lock appends its refusal; the live trainer's lines before and after it
    are all in the log (nothing truncated, no hole of NUL bytes)."""
    live = _job(tmp_path, "live", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert live.stdout.readline().strip() == "locked"
    assert _job(tmp_path, "second").wait(timeout=60) == 0
    live.stdin.write("go\n")
    live.stdin.close()
    assert live.wait(timeout=60) == 0
    text = (tmp_path / "job.log").read_text()
    assert "\0" not in text
    order = [
        text.index(s)
        for s in (
            "tunetrace attempt 1 ",
            "live trainer: step 1",
            "tunetrace attempt 2 ",
            "refused: ",
            "live trainer: step 2",
        )
    ]
    assert order == sorted(order), text
    assert "second trainer trained" not in text


def test_requeued_job_keeps_both_attempts_in_its_log(tmp_path):
    """The same job run twice under one Slurm job id (a requeue: SLURM_RESTART_COUNT 0, then 1) holds both
    attempts, each under a header naming the attempt, the Slurm job and its restart."""
    for restart in ("0", "1"):
        env = {"SLURM_JOB_ID": "4242", "SLURM_RESTART_COUNT": restart}
        assert _job(tmp_path, f"restart{restart}", env).wait(timeout=60) == 0
    lines = (tmp_path / "job.log").read_text().splitlines()
    headers = [line for line in lines if line.startswith("===== tunetrace attempt")]
    assert [h.split()[3:9] for h in headers] == [
        ["1", "slurm", "job", "4242", "restart", "0"],
        ["2", "slurm", "job", "4242", "restart", "1"],
    ]
    assert any("attempt body restart0" in line for line in lines)
    assert any("attempt body restart1" in line for line in lines)


def test_attempts_survive_snakemake_removing_the_log(tmp_path):
    """Snakemake removes a job's declared log before it runs the job again (a retry, a Slurm requeue): the log is a
    link to `<log>.attempts`, so removing it leaves the first attempt's lines, and the second attempt's header
    counts it. An older plain log file is taken into the attempts file."""
    log = tmp_path / "job.log"
    assert _job(tmp_path, "one", {}).wait(timeout=60) == 0
    assert log.is_symlink() and "attempt body one" in log.read_text()
    log.unlink()  # what Snakemake's Job.remove_existing_output does to a log
    assert _job(tmp_path, "two", {}).wait(timeout=60) == 0
    text = log.read_text()
    assert "attempt body one" in text and "attempt body two" in text
    assert [line.split()[3] for line in text.splitlines() if line.startswith("===== tunetrace attempt")] == ["1", "2"]

    from tunetrace.logutil import link_to_attempts

    plain = tmp_path / "old.log"
    plain.write_text("an older job's line\n")
    attempts = link_to_attempts(plain)
    assert plain.is_symlink() and attempts.read_text() == "an older job's line\n"
