"""tunetrace.jobcontext: the job context every workflow script runs its one stage call in."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from conftest import REPO
from tunetrace import jobcontext


def fake_snakemake(tmp_path):
    return SimpleNamespace(
        log=[str(tmp_path / "job.log")],
        input=SimpleNamespace(a="in.txt"),
        output=[str(tmp_path / "out.json")],
        wildcards=SimpleNamespace(seed="3"),
        params=SimpleNamespace(task=json.dumps({"k": 1})),
        threads=2,
    )


@pytest.fixture
def calls(monkeypatch):
    """The job context's collaborators replaced by recorders of the order they are called in."""
    seen: list[str] = []
    monkeypatch.setattr(jobcontext, "setup_logging", lambda path, capture_stderr: seen.append(f"log:{capture_stderr}"))
    monkeypatch.setattr(jobcontext, "discard_records", lambda outputs: seen.append("discard"))
    monkeypatch.setattr(jobcontext, "verify_inputs", lambda inputs: seen.append("check_inputs"))
    monkeypatch.setattr(jobcontext, "record_lineage", lambda smk: seen.append("record"))
    return seen


def test_order_on_success(tmp_path, calls):
    """Log, start hook, input check, refusal check, discard, then the body, then the lineage record; params
    decoded."""
    with jobcontext.job(
        fake_snakemake(tmp_path),
        check_inputs=True,
        on_start=lambda: calls.append("start"),
        refuse=lambda job: calls.append(f"refuse:{job.seed}"),
    ) as j:
        calls.append(f"body:{j.param('task')['k']}:{j.seed}")
    assert calls == ["log:True", "start", "check_inputs", "refuse:3", "discard", "body:1:3", "record"]


def test_a_refused_job_keeps_its_previous_records(tmp_path, calls):
    """A refusal (forged input, strict mode) stops the job before the old outputs' records are discarded."""

    def refuse(job):
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"), jobcontext.job(fake_snakemake(tmp_path), refuse=refuse):
        calls.append("body")
    assert calls == ["log:True"]


def test_no_record_when_the_stage_fails(tmp_path, calls):
    """An exception in the body propagates and no lineage is recorded (the old records are gone already)."""
    with pytest.raises(RuntimeError, match="stage failed"), jobcontext.job(fake_snakemake(tmp_path)):
        raise RuntimeError("stage failed")
    assert calls == ["log:True", "discard"]


def test_a_light_job_imports_no_torch():
    """Without torch_threads the context imports no torch (model-free jobs start without it)."""
    code = (
        "import sys, types, tunetrace.jobcontext as jc\n"
        "for name in ('setup_logging', 'discard_records', 'record_lineage'):\n"
        "    setattr(jc, name, lambda *a, **k: None)\n"
        "smk = types.SimpleNamespace(log=['x.log'], input=[], output=[], wildcards=None, params=None, threads=1)\n"
        "with jc.job(smk):\n    pass\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "False"


def test_torch_threads_sets_the_jobs_thread_count(tmp_path, calls):
    """With torch_threads, torch runs on the job's threads."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        with jobcontext.job(fake_snakemake(tmp_path), torch_threads=True):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_study_stop_exits_without_a_traceback(tmp_path, calls, caplog):
    """A StudyStopped (strict mode's verdict) ends the job with exit status 1 and its message logged, no traceback."""
    from tunetrace.config import StudyStopped

    def refuse(job):
        raise StudyStopped("validation.strict: full/t/seed0 loss_at_chance")

    with pytest.raises(SystemExit) as stopped, jobcontext.job(fake_snakemake(tmp_path), refuse=refuse):
        calls.append("body")
    assert stopped.value.code == 1 and stopped.value.__cause__ is None and "body" not in calls
    assert "full/t/seed0 loss_at_chance" in caplog.text
