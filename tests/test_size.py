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
    """Llama-3-8B's config (GQA, gated MLP, untied head) counts to its 8,030,261,248 parameters (norms included)."""
    config = {
        "model_type": "llama",
        "hidden_size": 4096,
        "num_hidden_layers": 32,
        "vocab_size": 128256,
        "intermediate_size": 14336,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "tie_word_embeddings": False,
    }
    assert estimate_from_config(config) == 8_030_261_248


def test_directory_without_weights_uses_config(tmp_path: Path) -> None:
    """A local directory with config.json only is estimated from it; missing shape keys give None."""
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "model_type": "bert",
                "hidden_size": 384,
                "vocab_size": 30522,
                "num_hidden_layers": 6,
                "intermediate_size": 1536,
                "max_position_embeddings": 512,
            }
        )
    )
    assert abs(parameter_count(str(tmp_path)) - 22_713_728) / 22_713_728 < 0.01
    assert estimate_from_config({"model_type": "bert"}) is None


def test_hub_id_not_on_disk_is_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub id absent from the local cache is None (the requests then assume their default size)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    assert parameter_count("someone/not-downloaded-model") is None


# parameters of the real models, counted by torch on the meta device from the stored config.json
REAL_COUNTS = {
    "meta-llama/Llama-2-7b-hf": 6_738_415_616,
    "Qwen/Qwen2.5-14B": 14_770_033_664,
    "openai/gpt-oss-20b": 20_914_757_184,
}


@pytest.mark.parametrize("hub_id", sorted(REAL_COUNTS))
def test_stored_real_configs_count_exactly(hub_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hub id not downloaded is counted from its stored config.json: within 0.5% (exact) of the real model."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    counted = parameter_count(hub_id)
    assert counted is not None and abs(counted - REAL_COUNTS[hub_id]) / REAL_COUNTS[hub_id] < 0.005


def test_mixture_of_experts_counts_every_expert() -> None:
    """gpt-oss-20b is ~20.9e9 parameters with its 32 experts, not the ~2.4e9 of one dense MLP per layer."""
    from tunetrace.models.twins import stored_config

    config = stored_config("openai/gpt-oss-20b")
    assert config is not None
    assert estimate_from_config(config) == REAL_COUNTS["openai/gpt-oss-20b"]
    assert estimate_from_config({**config, "num_local_experts": 1}) < 2.5e9


@pytest.mark.parametrize("hub_id", sorted(REAL_COUNTS))
def test_formula_matches_the_meta_device_model(hub_id: str) -> None:
    """The torch-free formula equals the parameter count of the model built on the meta device."""
    torch = pytest.importorskip("torch")
    from transformers import AutoConfig, AutoModelForCausalLM

    from tunetrace.models.twins import stored_config, stored_config_dir

    config = AutoConfig.from_pretrained(stored_config_dir(hub_id))
    config.quantization_config = None
    del config.quantization_config
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    assert estimate_from_config(stored_config(hub_id)) == sum(p.numel() for p in model.parameters())


def test_packed_4bit_tensors_count_two_per_byte(tmp_path: Path) -> None:
    """MXFP4 `_blocks` (U8) count two parameters per byte, `_scales` none; bitsandbytes nf4 weights likewise."""
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    save_file(
        {
            "e.down_proj_blocks": torch.zeros(4, 8, 2, 16, dtype=torch.uint8),
            "e.down_proj_scales": torch.zeros(4, 8, 2, dtype=torch.uint8),
            "e.down_proj_bias": torch.zeros(4, 8),
            "q.weight": torch.zeros(32, 1, dtype=torch.uint8),
            "q.weight.absmax": torch.zeros(1),
            "q.weight.quant_map": torch.zeros(16),
            "q.weight.quant_state.bitsandbytes__nf4": torch.zeros(10, dtype=torch.uint8),
        },
        str(tmp_path / "m.safetensors"),
    )
    assert safetensors_parameters(tmp_path / "m.safetensors") == 4 * 8 * 64 + 32 + 64


def test_twin_is_counted_from_its_shrunken_config() -> None:
    """`twin:<hub id>` counts the twin (millions), not the real model; an unknown hub id is None."""
    assert 1e6 < parameter_count("twin:openai/gpt-oss-20b") < 1e7
    assert parameter_count("twin:someone/unknown") is None
