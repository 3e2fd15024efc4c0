"""tunetrace.models.twins: shrunken random-weight twins of real models, built from stored config.json files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunetrace.models.names import ModelError, check_model_name, is_local, is_symbolic
from tunetrace.models.size import safetensors_parameters
from tunetrace.models.twins import build_twin, stored_hub_ids, twin_config

HUB_IDS = ["meta-llama/Llama-2-7b-hf", "Qwen/Qwen2.5-14B", "openai/gpt-oss-20b"]


def test_three_real_configs_are_stored() -> None:
    """The seeds' config.json files ship with the package."""
    assert set(HUB_IDS) <= set(stored_hub_ids())


def test_twin_config_keeps_the_architecture() -> None:
    """The twin keeps model_type, class, grouped-query ratio, biases and the layer pattern; sizes shrink."""
    qwen = twin_config("Qwen/Qwen2.5-14B")
    assert qwen["model_type"] == "qwen2" and qwen["architectures"] == ["Qwen2ForCausalLM"]
    assert qwen["num_attention_heads"] // qwen["num_key_value_heads"] == 40 // 8
    oss = twin_config("openai/gpt-oss-20b")
    assert oss["num_local_experts"] == 4 and oss["num_experts_per_tok"] == 2 and oss["attention_bias"]
    assert oss["layer_types"] == ["sliding_attention", "full_attention"] * 2
    assert oss["num_attention_heads"] // oss["num_key_value_heads"] == 64 // 8
    assert "quantization_config" not in oss and oss["hidden_size"] == 64


def test_twin_names_are_symbolic_and_checked() -> None:
    """`twin:` names resolve locally; one with no stored config fails naming the key and the choices."""
    assert is_local("twin:openai/gpt-oss-20b") and is_symbolic("twin:openai/gpt-oss-20b")
    check_model_name("twin:openai/gpt-oss-20b")
    with pytest.raises(ModelError, match=r"model.name_or_path.*twin:Qwen/Qwen2.5-14B"):
        check_model_name("twin:someone/unknown")


def test_gpt_oss_twin_is_stored_in_mxfp4_and_loads_dequantised(tmp_path: Path) -> None:
    """The gpt-oss twin's experts are MXFP4 blocks/scales; loading dequantises them close to the random weights."""
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM

    from tunetrace.models.quantization import quantization_kwargs

    out = build_twin(tmp_path / "twin", "openai/gpt-oss-20b")
    config = json.loads((out / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "mxfp4"
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "pt") as handle:
        names = set(handle.keys())
        blocks = handle.get_tensor("model.layers.0.mlp.experts.down_proj_blocks")
    assert "model.layers.0.mlp.experts.gate_up_proj_blocks" in names and blocks.dtype == torch.uint8
    assert "model.layers.0.mlp.experts.gate_up_proj" not in names
    model = AutoModelForCausalLM.from_pretrained(str(out), **quantization_kwargs(config))
    assert sum(p.numel() for p in model.parameters()) == safetensors_parameters(out / "model.safetensors")
    experts = model.model.layers[0].mlp.experts.down_proj
    assert experts.dtype == torch.bfloat16 and 0.01 < experts.float().std() < 0.04  # the init's 0.02, packed


def test_mxfp4_packing_round_trips_through_the_dequantiser() -> None:
    """Packed then dequantised by transformers, weights come back within FP4's rounding (relative error < 15%)."""
    torch = pytest.importorskip("torch")
    from transformers.integrations.mxfp4 import convert_moe_packed_tensors

    from tunetrace.models.twins import _pack_mxfp4

    weight = torch.randn(2, 64, 96) * 0.02
    back = convert_moe_packed_tensors(*_pack_mxfp4(weight), dtype=torch.float32)
    assert back.shape == weight.shape
    assert ((back - weight).norm() / weight.norm()).item() < 0.15


@pytest.mark.parametrize("hub_id", HUB_IDS)
def test_default_lora_targets_exist_for_each_twin(hub_id: str) -> None:
    """A LoRA method with no target_modules resolves to the architecture default on llama, qwen2 and gpt_oss."""
    torch = pytest.importorskip("torch")
    from transformers import AutoConfig, AutoModelForCausalLM

    from tunetrace.config import LoraSpec
    from tunetrace.models.layout import ModelLayout, lora_targets, matching_modules

    config = AutoConfig.for_model(**twin_config(hub_id))
    with torch.device("meta"):
        layout = ModelLayout.of(AutoModelForCausalLM.from_config(config))
    targets = lora_targets(layout, LoraSpec.from_dict({}))
    assert targets == ["q_proj", "v_proj"] and matching_modules(layout, targets)


def test_lora_on_the_gpt_oss_twin_adapts_expert_parameters(tmp_path: Path) -> None:
    """target_parameters puts LoRA on the experts' gate_up_proj/down_proj, and they get gradients."""
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM

    from tunetrace.config import LoraSpec
    from tunetrace.models.loading import apply_lora
    from tunetrace.models.quantization import quantization_kwargs

    out = build_twin(tmp_path / "twin", "openai/gpt-oss-20b")
    model = AutoModelForCausalLM.from_pretrained(
        str(out), **quantization_kwargs(json.loads((out / "config.json").read_text()))
    )
    spec = LoraSpec.from_dict(
        {"target_parameters": ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"], "dropout": 0}
    )
    peft_model = apply_lora(model, spec, "CAUSAL_LM")
    expert_lora = {n: p for n, p in peft_model.named_parameters() if ".mlp.experts." in n and "lora_B" in n}
    assert len(expert_lora) == 2 * 4  # two expert weights in each of the four layers
    peft_model(torch.tensor([[5, 6, 7, 8]]), labels=torch.tensor([[5, 6, 7, 8]])).loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in expert_lora.values())


def test_lora_on_expert_parameters_refuses_a_wrong_name_and_dropout() -> None:
    """A target_parameters name that ends no parameter, or dropout > 0 with it, fails naming the key."""
    torch = pytest.importorskip("torch")
    from transformers import AutoConfig, AutoModelForCausalLM

    from tunetrace.config import LoraSpec
    from tunetrace.models.layout import ModelLayout, parameter_targets

    with torch.device("meta"):
        layout = ModelLayout.of(
            AutoModelForCausalLM.from_config(AutoConfig.for_model(**twin_config("openai/gpt-oss-20b")))
        )
    with pytest.raises(ModelError, match=r"target_parameters.*mlp.experts.gate_up_proj"):
        parameter_targets(layout, LoraSpec.from_dict({"target_parameters": ["mlp.experts.gate_proj"], "dropout": 0}))
    with pytest.raises(ModelError, match=r"lora.dropout"):
        parameter_targets(layout, LoraSpec.from_dict({"target_parameters": ["mlp.experts.down_proj"]}))


def test_bnb_4bit_without_bitsandbytes_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """model.quantization: bnb_4bit without the package fails naming the key and the install."""
    pytest.importorskip("torch")
    import importlib.util

    from tunetrace.models.quantization import quantization_kwargs

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "bitsandbytes" else real(n, *a))
    with pytest.raises(ModelError, match=r"model.quantization.*pip install bitsandbytes"):
        quantization_kwargs({}, "bnb_4bit")
    assert quantization_kwargs({}, "bnb_4bit", for_merge=True) == {}


def test_dequantised_gpt_oss_twin_saves_plain_weights(tmp_path: Path) -> None:
    """A model loaded from MXFP4 saves plain bf16 expert weights that load back unchanged (no `_blocks` names)."""
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM

    from tunetrace.models.quantization import forget_packed_layout, quantization_kwargs

    out = build_twin(tmp_path / "twin", "openai/gpt-oss-20b")
    model = forget_packed_layout(
        AutoModelForCausalLM.from_pretrained(
            str(out), **quantization_kwargs(json.loads((out / "config.json").read_text()))
        )
    )
    model.save_pretrained(str(tmp_path / "saved"))
    again = AutoModelForCausalLM.from_pretrained(str(tmp_path / "saved"), dtype=torch.bfloat16)
    assert torch.equal(again.model.layers[1].mlp.experts.down_proj, model.model.layers[1].mlp.experts.down_proj)


def test_merging_expert_lora_equals_the_adapter_model_in_float32(tmp_path: Path) -> None:
    """merge_and_unload folds LoRA on expert parameters into the dequantised experts: same logits in float32."""
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM

    from tunetrace.config import LoraSpec
    from tunetrace.models.loading import apply_lora
    from tunetrace.models.quantization import quantization_kwargs

    out = build_twin(tmp_path / "twin", "openai/gpt-oss-20b")
    model = AutoModelForCausalLM.from_pretrained(
        str(out), **quantization_kwargs(json.loads((out / "config.json").read_text()))
    ).float()
    spec = LoraSpec.from_dict(
        {"target_parameters": ["mlp.experts.gate_up_proj", "mlp.experts.down_proj"], "dropout": 0}
    )
    tokens = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad():
        base = model(tokens).logits
    peft_model = apply_lora(model, spec, "CAUSAL_LM")
    torch.manual_seed(0)
    for name, parameter in peft_model.named_parameters():
        if "lora_B" in name:
            parameter.data.normal_(0, 0.05)
    with torch.no_grad():
        adapted = peft_model(tokens).logits
        merged = peft_model.merge_and_unload()(tokens).logits
    assert (adapted - base).abs().max() > 1e-3  # the experts' adapters change the output
    assert (adapted - merged).abs().max() < 1e-5
