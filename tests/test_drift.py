"""Drift tables and plots from step directories; the drift stage of the real workflow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tunetrace.analysis import representations as R
from tunetrace.analysis import steps as S
from tunetrace.analysis.drift import drift_markdown, drift_sections, drift_table
from tunetrace.stages.drift import compute_drift

IDENTITY = {"method": "full", "task": "tiny", "seed": 0}


def _write(step_dir: Path, layers: dict[int, np.ndarray], ids: list[str], step: int) -> None:
    tensors = {i: torch.from_numpy(a.astype(np.float32)) for i, a in layers.items()}
    info = {
        "step": step,
        "pooling": "mean",
        "dtype": "fp32",
        "probe": {"hash": R.probe_hash(ids), "size": len(ids), "ids": ids},
    }
    S.write_step(step_dir, tensors, None, info)


@pytest.fixture
def study(tmp_path: Path) -> tuple[Path, Path]:
    """Base and a run with steps 0 (= base), 10 (slightly moved) and 20 (layer 1 replaced by noise)."""
    rng = np.random.default_rng(0)
    ids = [f"e{i:03d}" for i in range(40)]
    base = {i: rng.normal(size=(40, 16)) for i in range(3)}
    _write(tmp_path / "base" / "step_000000", base, ids, 0)
    run = tmp_path / "run"
    _write(run / "step_000000", base, ids, 0)
    _write(run / "step_000010", {i: a + 0.1 * rng.normal(size=a.shape) for i, a in base.items()}, ids, 10)
    _write(run / "step_000020", {**base, 1: rng.normal(size=(40, 16))}, ids, 20)
    return tmp_path / "base" / "step_000000", run


def test_drift_table_has_one_row_per_step_and_layer(study):
    """Three steps x three layers; step 0 has CKA and cosine 1, noise drops CKA well below."""
    base, run = study
    frame = drift_table(base, run, IDENTITY)
    assert len(frame) == 9 and sorted(frame["step"].unique()) == [0, 10, 20]
    step0 = frame[frame["step"] == 0]
    assert np.allclose(step0["cka"], 1.0) and np.allclose(step0["cosine"], 1.0)
    noisy = frame[(frame["step"] == 20) & (frame["layer"] == 1)].iloc[0]
    assert noisy["cka"] < 0.7 and abs(noisy["cosine"]) < 0.3
    assert frame.notna().all().all()


def test_truncated_layer_file_fails_naming_it(study, tmp_path):
    """compute_drift on a run with a truncated layer file raises an error naming that file."""
    base, run = study
    bad = run / "step_000010" / "layer_2.safetensors"
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(S.RepresentationError, match=str(bad)):
        compute_drift(
            base, run, S.RepresentationSpec.from_dict({}), IDENTITY, tmp_path / "d.parquet", tmp_path / "h.png"
        )
    assert not (tmp_path / "d.parquet").exists()


def test_missing_layer_file_fails_naming_it(study, tmp_path):
    """A deleted layer file raises an error naming that file, not a NaN row."""
    base, run = study
    missing = run / "step_000020" / "layer_0.safetensors"
    missing.unlink()
    with pytest.raises(S.RepresentationError, match=str(missing)):
        drift_table(base, run, IDENTITY)


def test_probe_mismatch_is_refused(study, tmp_path):
    """A step captured on a different probe set is refused, naming its metadata file."""
    base, run = study
    rng = np.random.default_rng(1)
    _write(run / "step_000030", {i: rng.normal(size=(40, 16)) for i in range(3)}, [f"x{i}" for i in range(40)], 30)
    with pytest.raises(S.RepresentationError, match="step_000030/metadata.json: probe-set hash"):
        drift_table(base, run, IDENTITY)


def test_compute_drift_writes_table_and_heatmap(study, tmp_path):
    """The Parquet table round-trips and the heatmap is a PNG."""
    base, run = study
    compute_drift(base, run, S.RepresentationSpec.from_dict({}), IDENTITY, tmp_path / "d.parquet", tmp_path / "h.png")
    assert len(pd.read_parquet(tmp_path / "d.parquet")) == 9
    assert (tmp_path / "h.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_drift_section_names_method_that_moved_more(study, tmp_path):
    """The comparison section names the method that moved each layer more (lower final CKA), or a tie."""
    base, run = study
    full = drift_table(base, run, IDENTITY)
    lora = full.assign(
        method="lora", cka=np.where(full["layer"] == 1, 0.99, np.where(full["layer"] == 0, full["cka"], 0.2))
    )
    paths = []
    for name, frame in (("full", full), ("lora", lora)):
        frame.to_parquet(tmp_path / f"{name}.parquet")
        paths.append(tmp_path / f"{name}.parquet")
    section = drift_sections(paths, [], [], {"full": "full", "lora": "lora"})["tiny"]
    assert [row["moved_most"] for row in section["final_step"]] == ["tie", "full", "lora"]
    assert any("moved most" in line for line in drift_markdown(section))


@pytest.mark.workflow
def test_workflow_writes_representations_drift_and_plots(finished_workflow):
    """Every run has checked step dirs (the final step; step 0 is the base extraction by default), a drift
    table from step 0 (the base) to the final step, heatmap, weights and a drift section."""
    root = finished_workflow.root / "results"
    base = root / "representations" / "base" / "tiny" / "step_000000"
    S.load_step(base)
    for method in ("full", "lora_r4"):
        steps = S.list_steps(root / "representations" / method / "tiny" / "seed0")
        assert [s for s, _ in steps] == [4]
        for _, step_dir in steps:
            meta, layers, _ = S.load_step(step_dir)
            assert len(layers) == 7 and meta["probe"]["size"] == 24
        table = pd.read_parquet(root / "drift" / method / "tiny" / "seed0.parquet")
        assert len(table) == 14 and np.allclose(table[table["step"] == 0]["cka"], 1.0, atol=1e-4)
        assert (root / "plots" / "drift" / method / "tiny" / "seed0_cka_heatmap.png").stat().st_size > 0
        assert json.loads((root / "weights" / method / "tiny" / "seed0.json").read_text())["matrices"]
    assert (root / "plots" / "drift" / "tiny_final_cka_by_layer.png").stat().st_size > 0
    drift = json.loads((root / "comparison.json").read_text())["tasks"]["tiny"]["drift"]
    assert len(drift["final_step"]) == 7 and set(drift["method_types"]) == {"full", "lora_r4"}
