"""Integrity checks before reading: outputs against their lineage records, and the repair of a tampered tree."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tunetrace.provenance.audit import render_repairs, repair_plan, repair_targets
from tunetrace.provenance.integrity import TamperedInput, check_inputs, verify_inputs
from tunetrace.provenance.lineage import HashCache, JobInfo, build_records, write_records


def record(outputs: list[str], rule: str = "evaluate_run") -> None:
    """Write lineage records for files that exist, as the adapter of `rule` would."""
    job = JobInfo(
        rule=rule, wildcards={}, inputs=[], outputs=[(f"out{i}", p) for i, p in enumerate(outputs)], params={}
    )
    write_records(build_records(job, HashCache(None)))


@pytest.fixture
def study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A study directory (the working directory) with one recorded metrics file and one directory output."""
    monkeypatch.chdir(tmp_path)
    Path("results/eval").mkdir(parents=True)
    Path("results/eval/metrics.json").write_text('{"accuracy": 0.583}\n')
    Path("results/final").mkdir()
    Path("results/final/model.safetensors").write_bytes(b"w" * 64)
    record(["results/eval/metrics.json"])
    record(["results/final"], rule="train_run")
    return tmp_path


def test_untouched_outputs_pass(study: Path) -> None:
    """Outputs whose bytes are the recorded ones have no problem."""
    assert verify_inputs(["results/eval/metrics.json", "results/final"]) == []


def test_edited_metric_is_modified_and_named(study: Path) -> None:
    """A hand-edited value is `modified`, with the rule that wrote the file and the command regenerating it."""
    Path("results/eval/metrics.json").write_text('{"accuracy": 0.99}\n')
    [problem] = verify_inputs(["results/eval/metrics.json", "results/final"])
    assert (problem.path, problem.status, problem.rule) == ("results/eval/metrics.json", "modified", "evaluate_run")
    assert "snakemake --forcerun results/eval/metrics.json" in problem.message()


def test_edit_behind_restored_size_and_mtime_is_found(study: Path) -> None:
    """A same-size edit with the old mtime put back is still found: a reading job hashes every byte."""
    path = Path("results/eval/metrics.json")
    stat = path.stat()
    path.write_text('{"accuracy": 0.999}\n'[: stat.st_size - 1] + "\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    assert [p.status for p in verify_inputs([str(path)])] == ["modified"]


def test_deleted_file_of_directory_output_is_missing(study: Path) -> None:
    """A file gone from a directory output makes it `missing`, naming the file."""
    Path("results/final/model.safetensors").unlink()
    [problem] = verify_inputs(["results/final"])
    assert problem.status == "missing" and "model.safetensors" in problem.detail


def test_output_without_record_is_unrecorded(study: Path) -> None:
    """A workflow output whose record was deleted is refused where a record is required, passed where not."""
    Path("results/eval/metrics.json.lineage.json").unlink()
    assert [p.status for p in verify_inputs(["results/eval/metrics.json"])] == ["unrecorded"]
    assert verify_inputs(["results/eval/metrics.json"], require_record=False) == []


def test_record_copied_with_another_output_is_refused(study: Path) -> None:
    """A file copied over another together with its record still describes its old place: `modified`."""
    Path("results/eval/seed1").mkdir()
    for suffix in ("", ".lineage.json"):
        shutil.copy2(f"results/eval/metrics.json{suffix}", f"results/eval/seed1/metrics.json{suffix}")
    [problem] = verify_inputs(["results/eval/seed1/metrics.json"])
    assert problem.status == "modified" and "describes results/eval/metrics.json" in problem.detail


def test_check_inputs_raises_before_reading(study: Path) -> None:
    """check_inputs (the adapters' call) raises TamperedInput naming file, mismatch and forcerun command."""
    Path("results/eval/metrics.json").write_text('{"accuracy": 0.99}\n')
    with pytest.raises(TamperedInput) as caught:
        check_inputs(["results/final", "results/eval/metrics.json"])
    text = str(caught.value)
    assert "results/eval/metrics.json" in text and "sha256" in text
    assert "snakemake --forcerun results/eval/metrics.json" in text and "results/final" not in text


def test_check_inputs_is_off_without_lineage(study: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With TUNETRACE_LINEAGE=0 no record is written, so none is checked (records left from before may be old)."""
    Path("results/eval/metrics.json").write_text('{"accuracy": 0.99}\n')
    monkeypatch.setenv("TUNETRACE_LINEAGE", "0")
    check_inputs(["results/eval/metrics.json"])


def node(
    path: str,
    kind: str = "artifact",
    status: str = "ok",
    inputs: tuple[str, ...] = (),
    siblings: tuple[str, ...] = (),
    rule: str | None = "rule_x",
) -> dict:
    return {
        "path": path,
        "kind": kind,
        "rule": rule,
        "status": status,
        "problems": [] if status == "ok" else ["x"],
        "inputs": list(inputs),
        "siblings": list(siblings),
        "sources": [],
    }


def audit_result(*nodes: dict) -> dict:
    by_path = {n["path"]: n for n in nodes}
    return {
        "root": nodes[0]["path"],
        "nodes": by_path,
        "ok": False,
        "problems": [
            {"path": n["path"], "status": n["status"], "problems": n["problems"]} for n in nodes if n["status"] != "ok"
        ],
    }


def test_repair_forces_the_first_tampered_output_only() -> None:
    """A forged metric and the validation report downstream of it that a failed job removed: one forcerun,
    of the metric (snakemake reruns what reads it); the same job's second output is covered too."""
    result = audit_result(
        node("results/comparison.json", inputs=("results/eval/m.json", "results/validation/v.json")),
        node(
            "results/validation/v.json",
            status="missing",
            inputs=("results/eval/m.json",),
            siblings=("results/validation/v.txt",),
        ),
        node("results/validation/v.txt", status="missing"),
        node("results/eval/m.json", status="modified", rule="evaluate_run", inputs=("data/e.csv",)),
        node("data/e.csv", kind="source", rule=None),
    )
    plan = repair_plan(result)
    assert repair_targets(plan) == ["results/eval/m.json"]
    assert {e["path"] for e in plan if e["redundant"]} == {"results/validation/v.json", "results/validation/v.txt"}
    assert "snakemake --configfile c.yaml --forcerun results/eval/m.json" in render_repairs(
        plan, ["--configfile", "c.yaml"]
    )


def test_repair_of_an_edited_raw_file_is_to_restore_it() -> None:
    """No rule writes a raw data file: the plan says restore it (or rerun its readers), with no forcerun of it."""
    result = audit_result(
        node("results/data/train.parquet", inputs=("data/train.csv",)),
        node("data/train.csv", kind="source", status="modified", rule=None),
    )
    [entry] = repair_plan(result)
    assert entry["action"] == "restore" and repair_targets([entry]) == []
    assert "snakemake --forcerun results/data/train.parquet" in entry["note"]


def test_audit_repairs_a_vanished_output_by_forcerun(study: Path) -> None:
    """An input output gone with its record (a failed job's) is a workflow output to regenerate, not a raw file
    to restore: its consumer recorded a lineage id for it."""
    from tunetrace.provenance.audit import audit

    job = JobInfo(
        rule="compare_runs",
        wildcards={},
        inputs=[("evals", "results/eval/metrics.json")],
        outputs=[("comparison", "results/comparison.json")],
        params={},
    )
    Path("results/comparison.json").write_text("{}\n")
    write_records(build_records(job, HashCache(None)))
    for name in ("metrics.json", "metrics.json.lineage.json"):
        Path("results/eval", name).unlink()
    result = audit("results/comparison.json")
    assert {p["path"]: p["status"] for p in result["problems"]} == {"results/eval/metrics.json": "missing"}
    assert repair_targets(repair_plan(result)) == ["results/eval/metrics.json"]


def test_chained_record_rewritten_later_breaks_the_chain(study: Path) -> None:
    """A consumer records its input's record hash; rewriting that record (to match a forged file) is `broken`,
    named from the consumer; a consumer recorded without the hash only lists the input as unchained."""
    from tunetrace.provenance.audit import audit
    from tunetrace.provenance.lineage import sidecar_path

    Path("results/comparison.json").write_text("{}\n")
    job = JobInfo(
        rule="compare_runs",
        wildcards={},
        inputs=[("evals", "results/eval/metrics.json")],
        outputs=[("comparison", "results/comparison.json")],
        params={},
    )
    write_records(build_records(job, HashCache(None)))
    assert audit("results/comparison.json")["ok"]
    side = sidecar_path("results/eval/metrics.json")
    side.write_text(side.read_text().replace('"evaluate_run"', '"evaluate_run" '))
    result = audit("results/comparison.json")
    [problem] = result["problems"]
    assert problem["path"] == "results/eval/metrics.json" and problem["status"] == "broken"
    assert (
        "chain broken: results/eval/metrics.json's record changed after results/comparison.json was made"
        in problem["problems"][0]
    )
    consumer = sidecar_path("results/comparison.json")
    consumer.write_text(consumer.read_text().replace('"record_sha256"', '"old_field"'))
    unchained = audit("results/comparison.json")
    assert unchained["ok"] and unchained["unchained"] == ["results/eval/metrics.json"]


def test_final_output_edit_is_found_cheaply(study: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """edited_final_outputs hashes no file whose size and mtime match its record, and names a hand-edited one."""
    from tunetrace.provenance import integrity, lineage

    hashed: list[str] = []
    real = lineage.sha256_file
    monkeypatch.setattr(lineage, "sha256_file", lambda path: hashed.append(str(path)) or real(path))
    assert integrity.edited_final_outputs(["results/eval/metrics.json", "results/absent.json"]) == []
    assert hashed == []
    Path("results/eval/metrics.json").write_text('{"accuracy": 0.99}\n')
    [problem] = integrity.edited_final_outputs(["results/eval/metrics.json"])
    assert problem.status == "modified" and "sha256" in problem.detail and hashed


def test_recompute_diff_names_json_paths_within_tolerance() -> None:
    """diff_values gives the JSON path of each differing leaf; float noise and generated_at are not differences."""
    from tunetrace.recompute import diff_values

    stored = {"accuracy": 0.99, "groups": [{"rate": 0.5}], "f1": 0.7, "generated_at": "a"}
    again = {"accuracy": 0.58, "groups": [{"rate": 0.5 + 1e-12}], "f1": 0.7, "generated_at": "b"}
    assert list(diff_values(stored, again)) == [("$.accuracy", 0.99, 0.58)]
    assert list(diff_values({"a": [1, 2]}, {"a": [1, 3]})) == [("$.a[1]", 2, 3)]
