"""`tunetrace status`: run states from the snakemake summary table."""

from __future__ import annotations

import json
from pathlib import Path

from tunetrace.provenance.status import parse_summary, render_table, run_table

HEADER = "output_file\tdate\trule\tlog-file(s)\tstatus\tplan"


def row(path: str, rule: str, status: str = "ok", plan: str = "no update", log: str = "-") -> str:
    return "\t".join([path, "-", rule, log, status, plan])


def test_states_of_runs(tmp_path: Path) -> None:
    """done, stale (update pending), failed (log but no output) and missing runs are told apart."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "t.log").write_text("Traceback")
    text = "\n".join(
        [
            "Building DAG of jobs...",
            HEADER,
            row("results/runs/full/a/seed0/run.json", "train_run"),
            row("results/eval/full/a/seed0/metrics.json", "evaluate_run"),
            row("results/runs/lora/a/seed0/run.json", "train_run"),
            row("results/eval/lora/a/seed0/metrics.json", "evaluate_run", "updated input files", "update pending"),
            row("results/runs/full/a/seed1/run.json", "train_run", "missing", "update pending", "logs/t.log"),
            row("results/runs/lora/a/seed1/run.json", "train_run", "missing", "update pending", "logs/none.log"),
            row("results/comparison.json", "compare_runs"),
        ]
    )
    table = run_table(parse_summary(text), tmp_path)
    states = {key: entry["state"] for key, entry in table.items()}
    assert states == {
        ("full", "a", 0): "done",
        ("lora", "a", 0): "stale",
        ("full", "a", 1): "failed",
        ("lora", "a", 1): "missing",
    }
    assert "stale" in render_table(table)


def test_edited_output_is_modified(tmp_path: Path, monkeypatch) -> None:
    """An output whose bytes differ from its lineage record makes its run `modified`, even with no update planned."""
    from tunetrace.provenance.lineage import HashCache, JobInfo, build_records, write_records

    path = "results/eval/full/a/seed0/metrics.json"
    (tmp_path / path).parent.mkdir(parents=True)
    (tmp_path / path).write_text('{"accuracy": 0.583}\n')
    with monkeypatch.context() as patch:  # records are written from the study directory, as by a job
        patch.chdir(tmp_path)
        write_records(build_records(JobInfo("evaluate_run", {}, [], [("metrics", path)], {}), HashCache(None)))
    (tmp_path / path).write_text('{"accuracy": 0.99}\n')
    text = "\n".join([HEADER, row("results/runs/full/a/seed0/run.json", "train_run"), row(path, "evaluate_run")])
    table = run_table(parse_summary(text), tmp_path)
    assert table[("full", "a", 0)] == {"state": "modified", "rules": {"train_run": "done", "evaluate_run": "modified"}}


def _report(root: Path, method: str, seed: int, flags: list[tuple[str, str]]) -> None:
    """A validation report of method/a/seed<seed> with (severity, code) flags."""
    path = root / f"results/validation/{method}/a/seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    critical = sum(s == "critical" for s, _ in flags)
    path.write_text(
        json.dumps(
            {
                "method": method,
                "task": "a",
                "seed": seed,
                "passed": not critical,
                "critical": critical,
                "warning": len(flags) - critical,
                "flags": [{"severity": s, "code": c, "message": f"{c} seen", "files": []} for s, c in flags],
            }
        )
    )


SUMMARY = "\n".join(
    [
        HEADER,
        row("results/runs/full/a/seed0/run.json", "train_run"),
        row("results/runs/lora/a/seed0/run.json", "train_run"),
        row("results/runs/full/a/seed1/run.json", "train_run"),
    ]
)


def test_verdicts_and_withheld_comparison(tmp_path: Path) -> None:
    """Each run's verdict comes from its validation report (FAIL with counts, pass, - when none); with strict on
    and a critical flag standing, the comparison is withheld naming the run and code."""
    from tunetrace.provenance.status import add_verdicts, comparison_state, render_verdicts

    _report(tmp_path, "full", 0, [("critical", "loss_at_chance"), ("warning", "too_few_steps")])
    _report(tmp_path, "lora", 0, [])
    table = run_table(parse_summary(SUMMARY), tmp_path, tampered={})
    add_verdicts(table, tmp_path)
    text = render_table(table)
    assert [line.split()[-1] for line in text.splitlines()] == ["verdict", "FAIL(1c,1w)", "-", "pass"]
    verdicts = {key: entry["verdict"] for key, entry in table.items()}
    withheld = comparison_state(verdicts, strict=True, workdir=tmp_path)
    assert withheld["state"] == "withheld" and "full/a/seed0: loss_at_chance" in withheld["reason"]
    assert comparison_state(verdicts, strict=False, workdir=tmp_path)["state"] == "not written"
    (tmp_path / "results/comparison.json").write_text("{}")
    assert comparison_state(verdicts, strict=True, workdir=tmp_path)["state"] == "written"
    lines = render_verdicts(table, comparison_state(verdicts, strict=True, workdir=tmp_path))
    assert lines == [
        "comparison: results/comparison.json written",
        "CRITICAL full/a/seed0 loss_at_chance: loss_at_chance seen [results/validation/full/a/seed0.json]",
    ]


def test_status_command_exits_non_zero_naming_the_flagged_run(tmp_path: Path, monkeypatch, capsys) -> None:
    """`tunetrace status` with every run done but one critical flag standing exits 1, prints the verdicts, the
    comparison withheld (the compare job's log says strict stopped it) and the run and flag; all clean exits 0."""
    from tunetrace import cli

    monkeypatch.setattr(cli, "run_summary", lambda args: SUMMARY)
    monkeypatch.setattr(cli, "tampered_outputs", lambda rows: {})
    _report(tmp_path, "full", 0, [("critical", "not_better_than_trivial")])
    _report(tmp_path, "lora", 0, [])
    _report(tmp_path, "full", 1, [])
    (tmp_path / "logs/compare_runs").mkdir(parents=True)
    (tmp_path / "logs/compare_runs/compare_runs.log").write_text("StudyStopped: validation.strict is true and 1 ...")
    assert cli.main(["status", "--directory", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "comparison: results/comparison.json withheld - validation.strict is true" in out
    assert "CRITICAL full/a/seed0 not_better_than_trivial: not_better_than_trivial seen" in out
    _report(tmp_path, "full", 0, [("warning", "too_few_steps")])
    assert cli.main(["status", "--directory", str(tmp_path)]) == 0
