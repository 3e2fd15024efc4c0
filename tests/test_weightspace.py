"""Weight-space analysis: known answers, then a tiny full and LoRA run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from test_representations import _method, task_data, tiny_model  # noqa: F401 - shared fixtures
from tunetrace import artifacts as A
from tunetrace.analysis.weightspace import (
    WeightSpec,
    effective_rank,
    intruder_dimensions,
    layer_index,
    relative_update_norm,
    top_left_singular_vectors,
)
from tunetrace.stages.validate import analyze_weights


def test_relative_update_norm_known_answer():
    """Doubling the identity is an update as large as the matrix itself (1.0)."""
    assert relative_update_norm(np.eye(4), 2 * np.eye(4)) == pytest.approx(1.0)
    assert relative_update_norm(np.eye(4), np.eye(4)) == 0.0


def test_effective_rank_known_answers():
    """Identity of size n has effective rank n, a rank-1 matrix 1, a zero matrix 0."""
    rng = np.random.default_rng(0)
    assert effective_rank(np.eye(6)) == pytest.approx(6.0)
    assert effective_rank(np.outer(rng.normal(size=5), rng.normal(size=7))) == pytest.approx(1.0, abs=1e-6)
    assert effective_rank(np.zeros((3, 3))) == 0.0


def test_intruder_dimension_found_for_new_direction_only():
    """A strong spike along a direction far from every base singular vector is one intruder."""
    base = np.diag(np.arange(10, 0, -1.0))
    spread = np.ones(10) / np.sqrt(10)  # |cos| with every basis vector is 0.32 < 0.5
    tuned = base + 100.0 * np.outer(spread, spread)
    assert intruder_dimensions(base, base, top_k=3, threshold=0.5) == 0
    assert intruder_dimensions(base, tuned, top_k=3, threshold=0.5) == 1
    assert intruder_dimensions(base, tuned, top_k=3, threshold=0.3) == 0


@pytest.mark.parametrize("shape", [(12, 12), (40, 9), (9, 40), (5, 3)])
def test_top_left_singular_vectors_match_the_full_svd(shape):
    """The k leading left singular vectors equal numpy's SVD's up to sign, largest first, for square, tall and
    wide matrices, and k at the smaller side falls back to the full SVD."""
    rng = np.random.default_rng(1)
    matrix = rng.normal(size=shape) @ np.diag(np.geomspace(10, 0.1, shape[1]))
    full = np.linalg.svd(matrix, full_matrices=False)[0]
    k = min(4, min(shape))
    top = top_left_singular_vectors(matrix, k)
    assert top.shape == (shape[0], k)
    assert np.allclose(np.abs(np.sum(top * full[:, :k], axis=0)), 1.0, atol=1e-9)


def test_intruder_counts_equal_the_full_svd_definition():
    """On random matrices with planted new directions, the count equals the definition computed with full SVDs
    at every threshold."""
    rng = np.random.default_rng(2)
    for trial in range(5):
        base = rng.normal(size=(30, 20))
        spikes = rng.normal(size=(30, 3)) @ rng.normal(size=(3, 20)) * (2 + trial)
        tuned = base + spikes
        u_base = np.linalg.svd(base, full_matrices=False)[0]
        u_tuned = np.linalg.svd(tuned, full_matrices=False)[0][:, :6]
        best = np.abs(u_tuned.T @ u_base).max(axis=1)
        for threshold in (0.3, 0.5, 0.7, 0.9):
            assert intruder_dimensions(base, tuned, 6, threshold) == int((best < threshold).sum())


def test_layer_index_from_parameter_name():
    """Block index is read from BERT- and Llama-style names; None outside blocks."""
    assert layer_index("bert.encoder.layer.3.attention.self.query") == 3
    assert layer_index("model.layers.12.self_attn.q_proj") == 12
    assert layer_index("bert.embeddings.word_embeddings") is None


@pytest.mark.parametrize("kind", ["full", "lora"])
def test_analyze_weights_on_tiny_runs(tiny_model, task_data, tmp_path, kind):  # noqa: F811
    """Full runs report every block linear layer; LoRA only its targets, with rank use <= 1."""
    from tunetrace.training.loop import train_run

    task, data_dir = task_data
    method = _method(kind)
    train_run(tiny_model, task, method, seed=0, data_dir=data_dir, run_dir=tmp_path / "run")
    out = tmp_path / "weights.json"
    analyze_weights(tiny_model, task, method, WeightSpec.from_dict({}), tmp_path / "run" / A.FINAL_DIR, 0, out)
    result = json.loads(out.read_text())
    names = [m["name"] for m in result["matrices"]]
    assert all(m["relative_update_norm"] > 0 for m in result["matrices"])
    if kind == "lora":
        assert len(names) == 4 and all(n.endswith(("query", "value")) for n in names)
        assert all(0 < m["rank_utilisation"] <= 1.0 for m in result["matrices"])
    else:
        assert len(names) == 12 and all(m["rank_utilisation"] is None for m in result["matrices"])
