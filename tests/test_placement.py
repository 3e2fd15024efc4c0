"""The placement policy of inference jobs (models.placement): CPU, one GPU or sharded, and sharding's outputs."""

from __future__ import annotations

import logging

import pytest
import torch

from tunetrace.config import ModelSpec
from tunetrace.models import placement as P
from tunetrace.models.loading import load_causal_lm

GIB = 2**30


def _spec(name: str = "tiny:llama", dtype: str = "float32") -> ModelSpec:
    return ModelSpec(name_or_path=name, revision=None, dtype=dtype, trust_remote_code=False, quantization=None)


def test_no_gpu_places_on_cpu_without_a_device_map():
    """Without GPUs the job loads on the CPU in the config's dtype, as before the policy (demo numbers kept)."""
    placement = P.decide(22_000_000, "float32", [])
    assert (placement.kind, placement.main_device, placement.device_map) == ("cpu", "cpu", None)
    assert placement.load_kwargs()["dtype"] is torch.float32 and "device_map" not in placement.load_kwargs()


def test_a_model_that_fits_takes_one_gpu():
    """7B bf16 weights (14 GB) fit one 80 GB GPU with headroom: the whole model on cuda:0."""
    placement = P.decide(7_000_000_000, "bfloat16", [80 * GIB, 80 * GIB])
    assert placement.kind == "gpu" and placement.device_map == {"": 0} and placement.devices == ("cuda:0",)


def test_a_model_larger_than_one_gpu_is_sharded_over_all():
    """70B bf16 weights (140 GB) exceed one 80 GB GPU: sharded over the job's four, capped per GPU."""
    placement = P.decide(70_000_000_000, "bfloat16", [80 * GIB] * 4)
    assert placement.kind == "sharded" and len(placement.devices) == 4
    assert placement.load_kwargs()["device_map"] == "auto" and set(placement.max_memory) == {0, 1, 2, 3}


def test_a_model_larger_than_all_gpus_is_refused_with_the_count_needed():
    """Weights beyond every GPU's headroom fail before loading, naming the GPUs the job needs."""
    with pytest.raises(MemoryError, match="give the job 3 GPUs"):
        P.decide(70_000_000_000, "bfloat16", [80 * GIB])


def test_two_models_in_one_job_share_each_gpu():
    """A job holding two copies (the merge check) shards a model that alone would fit one GPU."""
    assert P.decide(30_000_000_000, "bfloat16", [80 * GIB] * 2).kind == "gpu"
    both = P.decide(30_000_000_000, "bfloat16", [80 * GIB] * 2, copies=2)
    assert both.kind == "sharded" and both.max_memory == {0: int(0.8 * 40 * GIB), 1: int(0.8 * 40 * GIB)}


def test_placement_is_logged_once_per_job(caplog):
    """One 'placement: <reason>' line however often the job's loaders ask."""
    P._placement_for.cache_clear()
    with caplog.at_level(logging.INFO, logger="tunetrace.models.placement"):
        first, second = P.placement_for(_spec()), P.placement_for(_spec())
    assert first is second
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("placement: ")] == [
        f"placement: {first.reason}"
    ]


def test_shard_map_spreads_layers_over_n_fake_gpus():
    """The device map for N GPUs (computed on the meta device, no GPU needed) puts blocks on every one of them."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    # blocks dominate the size (a small vocabulary), as in a large model
    config = LlamaConfig(
        vocab_size=256,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=8,
        num_attention_heads=4,
        num_key_value_heads=4,
    )
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    total = sum(p.numel() * 4 for p in skeleton.parameters())
    for n in (2, 4):
        per_device = int(total / n * 1.5)  # room for a bit more than 1/n of the model, never all of it
        device_map = P.shard_device_map(skeleton, {i: per_device for i in range(n)}, "float32")
        assert set(device_map.values()) == set(range(n)), device_map
        # the model's unsplittable blocks (LlamaDecoderLayer) are each on one device
        assert not any(".self_attn" in name or ".mlp" in name for name in device_map)


@torch.no_grad()
def test_a_sharded_model_gives_the_unsharded_outputs():
    """A model dispatched over two devices by a device map computes what the model on one device computes."""
    from accelerate import dispatch_model

    spec = _spec()
    ids = torch.tensor([[2, 10, 11, 12, 13], [2, 14, 15, 16, 17]])
    whole = load_causal_lm(spec).eval()
    expected = whole(input_ids=ids).logits
    sharded = load_causal_lm(spec).eval()
    # two 'devices' that are both the CPU: the split and the hops between blocks are accelerate's real ones
    device_map = {
        "model.embed_tokens": "cpu",
        "model.rotary_emb": "cpu",
        "model.layers.0": "cpu",
        "model.layers.1": "cpu",
        "model.norm": "cpu",
        "lm_head": "cpu",
    }
    sharded = dispatch_model(sharded, device_map=device_map, main_device="cpu")
    assert len(set(device_map)) == 6 and P.input_device(sharded) == torch.device("cpu")
    torch.testing.assert_close(sharded(input_ids=ids.to(P.input_device(sharded))).logits, expected)


def test_placed_load_matches_the_plain_load():
    """A load through the CPU placement (dtype, low_cpu_mem_usage) gives the same weights as the plain load."""
    spec = _spec()
    plain = load_causal_lm(spec)
    placed = load_causal_lm(spec, placement=P.decide(1, "float32", []))
    for (name, a), (_, b) in zip(plain.state_dict().items(), placed.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, msg=name)
    assert P.used_devices(placed) == ["cpu"]
