"""Weight-space analysis: known answers, then a tiny full and LoRA run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from test_representations import _method, task_data, tiny_model  # noqa: F401 - shared fixtures
from tunetrace import artifacts as A
from tunetrace.analysis.weightspace import (
    WeightSpec,
    analyze_weights,
    effective_rank,
    intruder_dimensions,
    layer_index,
    relative_update_norm,
)


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
