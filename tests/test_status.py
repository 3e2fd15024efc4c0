"""`tunetrace status`: run states from the snakemake summary table."""

from __future__ import annotations

from pathlib import Path

from tunetrace.provenance.status import parse_summary, render_table, run_table

HEADER = "output_file\tdate\trule\tlog-file(s)\tstatus\tplan"


def row(path: str, rule: str, status: str = "ok", plan: str = "no update", log: str = "-") -> str:
    return "\t".join([path, "-", rule, log, status, plan])


def test_states_of_runs(tmp_path: Path) -> None:
    """done, stale (update pending), failed (log but no output) and missing runs are told apart."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "t.log").write_text("Traceback")
    text = "\n".join([
        "Building DAG of jobs...", HEADER,
        row("results/runs/full/a/seed0/run.json", "train_run"),
        row("results/eval/full/a/seed0/metrics.json", "evaluate_run"),
        row("results/runs/lora/a/seed0/run.json", "train_run"),
        row("results/eval/lora/a/seed0/metrics.json", "evaluate_run", "updated input files", "update pending"),
        row("results/runs/full/a/seed1/run.json", "train_run", "missing", "update pending", "logs/t.log"),
        row("results/runs/lora/a/seed1/run.json", "train_run", "missing", "update pending", "logs/none.log"),
        row("results/comparison.json", "compare_runs"),
    ])
    table = run_table(parse_summary(text), tmp_path)
    states = {key: entry["state"] for key, entry in table.items()}
    assert states == {("full", "a", 0): "done", ("lora", "a", 0): "stale",
                      ("full", "a", 1): "failed", ("lora", "a", 1): "missing"}
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
