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
    out = subprocess.run([sys.executable, "-c", EXIT_PROBE, str(tmp_path / "job.log")], env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "True"]
