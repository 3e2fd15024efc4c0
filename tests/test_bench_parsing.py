"""The benchmarks' pure parsing helpers (bench/benchkit.py, bench/make_bench.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from bench_overhead import crossover, scopes  # noqa: E402
from benchkit import Job, JobLog, md_table, parse_job_log, read_benchmark_tsv, union_seconds  # noqa: E402
from make_bench import carried_over, split_earlier, write  # noqa: E402

LOG = """\
2026-11-30 23:30:01,000 INFO tunetrace.models.loading: loaded model /m/model in 0.41 s
Loading weights: 100%|##########| 103/103
2026-11-30 23:30:02,500 INFO tunetrace.analysis.representations: captured results/x/step_000000 (7 layers) in 0.95 s
2026-11-30 23:30:09,000 INFO tunetrace.models.loading: loaded model results/runs/final in 0.30 s
2026-11-30 23:30:11,250 INFO tunetrace.provenance.lineage: lineage: recorded 5 output(s) of train_run in 0.317 s
"""


def test_job_log_span_and_events():
    """The span runs from the first to the last timestamped line; loads, captures and lineage are read."""
    log = parse_job_log(LOG)
    assert log.span_s == pytest.approx(10.25)
    assert log.model_loads == [0.41, 0.30]
    assert log.captures == [0.95]
    assert log.lineage == [0.317]


def test_job_log_time_before_the_first_model_load():
    """From the first line to the start of the first load: a job that imports torch lazily pays it there."""
    log = parse_job_log("2026-11-30 23:29:55,000 INFO tunetrace.logutil: logging to x.log\n" + LOG)
    assert log.before_first_load_s == pytest.approx(6.0 - 0.41)
    assert parse_job_log(LOG).before_first_load_s == 0.0  # the load is the first line: no time before it
    assert parse_job_log("2026-11-30 23:29:55,000 INFO a.b: no load\n").before_first_load_s == 0.0


def test_job_log_without_logging_lines():
    """A log with no timestamped line has a zero span and no events."""
    log = parse_job_log("Traceback (most recent call last):\n")
    assert (log.span_s, log.model_loads) == (0.0, [])


def test_benchmark_tsv_first_row():
    """Snakemake's benchmark file gives the wall seconds and max RSS of its first row."""
    text = "s\th:m:s\tmax_rss\tmax_vms\n12.5\t0:00:12\t812.3\t900\n"
    assert read_benchmark_tsv(text) == {"s": 12.5, "max_rss": 812.3}


def test_union_counts_overlaps_once():
    """Two overlapping jobs and a separate one: the overlap is counted once, the gap not at all."""
    assert union_seconds([(0, 10), (5, 12), (20, 21)]) == pytest.approx(13)


def test_md_table_formats_floats():
    """Floats get two decimals, other cells are printed as they are."""
    assert md_table(["a", "b"], [["x", 1.234]]).splitlines()[-1] == "| x | 1.23 |"


def test_earlier_results_by_topic():
    """RESULTS.md sections go under their topics, headings demoted, issue numbers dropped."""
    text = (
        "# Benchmark results\n\n## Demo wall time (issue 2)\n\nrow\n\n## Representation drift (issue 3)\n\n"
        "### Training with representation capture vs without\n\nA\n\n"
        "### compute_drift on the demo probe set\n\nB\n"
    )
    pieces = split_earlier(text)
    assert pieces["demo"] == ["### Earlier: Demo wall time\n\nrow\n"]
    assert [p.splitlines()[0] for p in pieces["overhead"]] == [
        "### Earlier: Representation drift",
        "#### Training with representation capture vs without",
    ]
    assert pieces["storage"] == ["### Earlier: compute_drift on the demo probe set\n\nB\n"]


def test_render_keeps_fresh_sections_and_refolds_earlier_ones(tmp_path):
    """--render / --only: the file's fresh sections and header come back unchanged; Earlier ones are re-read."""
    fresh = {
        "overhead": ["### Pipeline vs plain\n\n| a |\n\n#### pairs\n\nrow\n\n_Ran in 3 s._\n"],
        "demo": ["### The demo\n\nwall 150 s\n"],
    }
    out = tmp_path / "BENCHMARKS.md"
    write(
        out,
        "# Benchmarks\n\n- Date: then\n\n",
        fresh,
        split_earlier("## Demo wall time\n\nold\n"),
        ["_`bench/x.py` not run yet._\n"],
    )
    header, kept = carried_over(out.read_text())
    assert header == "# Benchmarks\n\n- Date: then\n\n" and kept == fresh
    write(out, header, kept, split_earlier("## Demo wall time\n\nnew\n"), [])
    text = out.read_text()
    assert "new" in text and "old" not in text and carried_over(text) == (header, fresh)


def test_job_log_first_line_is_logging_setup(tmp_path):
    """setup_logging writes the attempt header, then a first timestamped line, so a job log's span starts right
    after the imports (the header, which carries no log timestamp, is not part of it)."""
    import logging

    from tunetrace.logutil import setup_logging

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    log_file = tmp_path / "job.log"
    try:
        setup_logging(log_file)
        logging.getLogger("x").info("work")
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], root.level = saved
    lines = log_file.read_text().splitlines()
    assert lines[0].startswith("===== tunetrace attempt 1 ") and "logging to" in lines[1]
    assert parse_job_log("\n".join(lines)).span_s >= 0


def test_crossover_where_fixed_costs_fall_to_the_goal():
    """Pipeline = plain + 8 s fixed: the ratio 1.10 is reached where plain takes 80 s; lines that never meet
    (a pipeline slower per epoch by more than the goal) or a single length give None."""
    points = [(3, 30.0, 38.0), (6, 60.0, 68.0)]
    epochs, plain = crossover(points)
    assert plain == pytest.approx(80.0)
    assert epochs == pytest.approx(8.0)
    assert crossover([(3, 10.0, 30.0), (6, 20.0, 60.0)]) is None
    assert crossover([(3, 30.0, 38.0)]) is None


def _job(rule: str, start: float, wall: float) -> Job:
    return Job(rule, rule, wall, 100.0, start + wall, JobLog())


def test_scopes_split_the_extra_time_by_how_often_a_study_pays_it():
    """prepare_data and check_model overlap (counted once), then train_run and evaluate_run; Snakemake's own
    time is what no job covered."""
    jobs = [
        _job("prepare_data", 1.0, 0.5),
        _job("check_model", 1.0, 4.0),
        _job("train_run", 5.5, 30.0),
        _job("evaluate_run", 36.0, 1.0),
    ]
    pipe = {"wall": 39.0, "jobs": jobs, "run_jobs": 31.0}
    got = scopes({"wall": 29.0}, pipe)
    assert got["per task"] == pytest.approx(4.0)
    assert got["per run"] == pytest.approx(2.0)
    assert got["per invocation"] == pytest.approx(39.0 - 35.0)
