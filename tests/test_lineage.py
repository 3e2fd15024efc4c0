"""Lineage records: sidecar scheme, hashing once, reuse of input records, code version."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from conftest import REPO
from tunetrace.fileio import sha256_file
from tunetrace.provenance.lineage import (
    HashCache,
    JobInfo,
    build_records,
    describe_input,
    hash_artifact,
    read_record,
    sidecar_path,
    write_records,
)


def make_job(tmp_path: Path, inputs: list[tuple[str, str]], outputs: list[tuple[str, str]]) -> JobInfo:
    return JobInfo(
        rule="demo_rule",
        wildcards={"task": "t", "seed": "3"},
        inputs=inputs,
        outputs=outputs,
        params={"task": {"max_length": 8}},
        logs=["logs/x.log"],
        started="2026-01-01T00:00:00+00:00",
    )


def test_sidecar_sits_beside_file_and_directory(tmp_path: Path) -> None:
    """A file's record is <file>.lineage.json; a directory's record is beside it, not inside."""
    assert sidecar_path(tmp_path / "a" / "m.json") == tmp_path / "a" / "m.json.lineage.json"
    assert sidecar_path(tmp_path / "run" / "final") == tmp_path / "run" / "final.lineage.json"


def test_directory_hash_ignores_snakemake_marker(tmp_path: Path) -> None:
    """Snakemake's .snakemake_timestamp in a directory output is not part of its content."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "w.bin").write_bytes(b"weights")
    before = hash_artifact(tmp_path / "d")["sha256"]
    (tmp_path / "d" / ".snakemake_timestamp").write_text("")
    assert hash_artifact(tmp_path / "d")["sha256"] == before


def test_records_name_inputs_params_and_code(tmp_path: Path, monkeypatch) -> None:
    """Each output's record holds rule, wildcards, seed, the raw input's sha256, params and code version."""
    monkeypatch.chdir(tmp_path)
    Path("raw.csv").write_text("a,b\n1,2\n")
    Path("out.json").write_text("{}")
    records = build_records(make_job(tmp_path, [("raw", "raw.csv")], [("out", "out.json")]), HashCache(None))
    record = records["out.json"]
    assert record["rule"] == "demo_rule" and record["seed"] == 3
    assert record["inputs"][0]["sha256"] == sha256_file("raw.csv") and record["inputs"][0]["lineage_id"] is None
    assert record["params"] == {"task": {"max_length": 8}}
    assert len(record["code"]["pkg_sha256"]) == 64 and "torch" in record["packages"]


def test_input_with_record_is_not_rehashed(tmp_path: Path, monkeypatch) -> None:
    """An input whose size and mtime match its own record reuses the recorded hash and lineage id."""
    monkeypatch.chdir(tmp_path)
    Path("ckpt.bin").write_bytes(b"x" * 1000)
    write_records(build_records(make_job(tmp_path, [], [("ckpt", "ckpt.bin")]), HashCache(None)))
    record = read_record("ckpt.bin")
    record_path = sidecar_path("ckpt.bin")
    # plant a wrong hash in the record: if the input were re-hashed, the true hash would show
    text = record_path.read_text().replace(record["artifact"]["files"][0]["sha256"], "f" * 64)
    record_path.write_text(text)
    described = describe_input("ckpt.bin", "ckpt", HashCache(None))
    assert described["sha256"] == "f" * 64
    assert described["lineage_id"] == record["id"]


def test_input_with_new_mtime_is_rehashed(tmp_path: Path, monkeypatch) -> None:
    """When an input's mtime no longer matches its record, its bytes are hashed again."""
    monkeypatch.chdir(tmp_path)
    Path("ckpt.bin").write_bytes(b"x" * 1000)
    write_records(build_records(make_job(tmp_path, [], [("ckpt", "ckpt.bin")]), HashCache(None)))
    Path("ckpt.bin").write_bytes(b"y" * 1000)
    os.utime("ckpt.bin", ns=(1, 1))
    described = describe_input("ckpt.bin", "ckpt", HashCache(None))
    assert described["sha256"] == sha256_file("ckpt.bin")
    assert described["matches_record"] is False


def test_hash_cache_reuses_unchanged_source(tmp_path: Path) -> None:
    """The source hash cache answers from its file while size and mtime are unchanged."""
    source = tmp_path / "model"
    source.mkdir()
    (source / "w.bin").write_bytes(b"w" * 10)
    cache = HashCache(tmp_path / "cache.json")
    first = cache.hash(source)
    cache.save()
    again = HashCache(tmp_path / "cache.json").hash(source)
    assert again["reused_hashes"] == 1 and again["sha256"] == first["sha256"]


def test_script_is_recorded_relative_to_the_repository() -> None:
    """The workflow script is named repository-relative (like params.code), not by this checkout's path."""
    from tunetrace.provenance.lineage import code_version

    script = REPO / "workflow_scripts" / "evaluate_run.py"
    assert code_version(script)["script"] == "workflow_scripts/evaluate_run.py"


def test_symbolic_base_model_is_recorded_by_name(tmp_path: Path, monkeypatch) -> None:
    """An embedded base model is recorded as `embedded:<name>` with its hashes, not its directory in the venv."""
    monkeypatch.chdir(tmp_path)
    Path("out.json").write_text("{}")
    job = make_job(tmp_path, [], [("out", "out.json")])
    job.params = {"model": {"name_or_path": "embedded:all-MiniLM-L6-v2"}}
    [source] = build_records(job, HashCache(None))["out.json"]["sources"]
    assert source["path"] == source["ref"] == "embedded:all-MiniLM-L6-v2"
    assert any(f["path"] == "config.json" for f in source["files"])
    assert sys.prefix not in json.dumps(source)


def test_absolute_path_inside_the_study_is_recorded_relative(tmp_path: Path, monkeypatch) -> None:
    """A path inside the study directory becomes relative to it; one outside stays as given."""
    from tunetrace.provenance.lineage import portable_path

    monkeypatch.chdir(tmp_path)
    assert portable_path(tmp_path / "results" / "m.json") == "results/m.json"
    assert portable_path("/elsewhere/data.csv") == "/elsewhere/data.csv"
    assert portable_path(tmp_path.parent / (tmp_path.name + "x") / "m.json").startswith("/")


def test_wandb_run_id_comes_from_run_json(tmp_path: Path, monkeypatch) -> None:
    """A training job's record carries the W&B run id its run.json records (the tracker has finished by then)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WANDB_RUN_ID", raising=False)
    Path("run.json").write_text(json.dumps({"tracking": {"wandb_mode": "offline", "wandb_run_id": "abc123"}}))
    records = build_records(make_job(tmp_path, [], [("metadata", "run.json")]), HashCache(None))
    assert records["run.json"]["wandb_run_id"] == "abc123"


def test_job_start_discards_the_records_of_its_outputs(tmp_path: Path) -> None:
    """discard_records removes the sidecars of the outputs a job rewrites (file and directory alike), so a
    job that fails cannot leave a record beside a missing output; other records stay."""
    from tunetrace.provenance.lineage import discard_records

    outputs = [tmp_path / "run.json", tmp_path / "final"]
    kept = sidecar_path(tmp_path / "metrics.json")
    for side in [*map(sidecar_path, outputs), kept]:
        side.write_text("{}")
    assert discard_records(outputs) == [sidecar_path(o) for o in outputs]
    assert not any(sidecar_path(o).exists() for o in outputs) and kept.is_file()
