"""tunetrace.models.size: parameter counts without torch, from safetensors headers or config.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunetrace.models.size import estimate_from_config, parameter_count, safetensors_parameters


def test_safetensors_header_counts_elements(tmp_path: Path) -> None:
    """The header's shapes give the exact element count (metadata ignored)."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    save_file({"a": torch.zeros(3, 4), "b": torch.zeros(5)}, str(tmp_path / "m.safetensors"), metadata={"x": "y"})
    assert safetensors_parameters(tmp_path / "m.safetensors") == 17


def test_embedded_model_is_counted_exactly() -> None:
    """The embedded MiniLM: 22,713,728 parameters, as torch counts them."""
    assert parameter_count("embedded:all-MiniLM-L6-v2") == 22_713_728


def test_llama_config_estimate_matches_the_published_size() -> None:
    """Llama-3-8B's config (GQA, gated MLP, untied head) estimates to its published 8.03B parameters."""
    config = {"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32, "vocab_size": 128256,
              "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8,
              "tie_word_embeddings": False}
    assert estimate_from_config(config) == 8_029_995_008


def test_directory_without_weights_uses_config(tmp_path: Path) -> None:
    """A local directory with config.json only is estimated from it; missing shape keys give None."""
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 384, "vocab_size": 30522,
                                                      "num_hidden_layers": 6, "intermediate_size": 1536,
                                                      "max_position_embeddings": 512}))
    assert abs(parameter_count(str(tmp_path)) - 22_713_728) / 22_713_728 < 0.01
    assert estimate_from_config({"model_type": "bert"}) is None


def test_hub_id_not_on_disk_is_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub id absent from the local cache is None (the requests then assume their default size)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert parameter_count("someone/not-downloaded-model") is None
