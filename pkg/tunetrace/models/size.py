"""How many parameters the base model has, without torch and without loading weights.

The cluster requests (`tunetrace.cluster.requests`) scale with it. Counted from the safetensors
headers of a model on disk (exact; packed quantised weights counted as the parameters they hold),
else computed from its config.json (embeddings, attention with its biases, dense or mixture-of-experts
MLP, norms), else unknown. Runs at the DAG build, so it reads only files and never touches the network
or imports torch: building the model on the meta device would give the same count but costs the import of
torch and transformers (seconds) on every DAG build. tests/test_size.py holds the formula to the meta-device
count of the stored real configs (models/configs/).
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunetrace.models.embedded import EMBEDDED_PREFIX, resolve_embedded
from tunetrace.models.tiny import SIZES, TINY_PREFIX
from tunetrace.models.twins import TWIN_PREFIX, stored_config, stored_config_dir, twin_config

log = logging.getLogger(__name__)

TINY_VOCAB = 30522  # the embedded MiniLM's WordPiece vocabulary, which tiny decoders use
# MLPs with a gate projection (SwiGLU/GeGLU): three h x I matrices instead of two
GATED_MODEL_TYPES = frozenset(
    {
        "llama",
        "mistral",
        "mixtral",
        "qwen2",
        "qwen3",
        "gemma",
        "gemma2",
        "gemma3",
        "phi3",
        "olmo",
        "olmo2",
        "granite",
        "cohere",
        "deepseek_v3",
        "gpt_oss",
        "qwen2_moe",
        "qwen3_moe",
    }
)
# Architectures with a bias on q, k and v (qwen2) or on every attention projection (config attention_bias)
QKV_BIAS_MODEL_TYPES = frozenset({"qwen2", "qwen2_moe"})
# Architectures whose experts carry biases (gpt-oss: gate_up_proj_bias, down_proj_bias) and a router bias
EXPERT_BIAS_MODEL_TYPES = frozenset({"gpt_oss"})
# One learned attention-sink logit per head and layer
SINK_MODEL_TYPES = frozenset({"gpt_oss"})
# Packed quantised tensors: elements that are not one parameter each. MXFP4 `*_blocks` (U8) and
# bitsandbytes 4-bit weights (U8) hold two 4-bit values per byte; their scales and quantisation state
# (absmax, quant_map, ...) are no parameters.
PACKED_SUFFIXES = ("_blocks",)
STATE_SUFFIXES = (
    "_scales",
    ".absmax",
    ".quant_map",
    ".nested_absmax",
    ".nested_quant_map",
    ".quant_state",
    ".SCB",
    ".weight_format",
)


def _tensor_parameters(name: str, entry: Mapping[str, Any], bnb_packed: set[str]) -> int:
    numel = 1
    for dim in entry["shape"]:
        numel *= dim
    if any(name.endswith(s) for s in STATE_SUFFIXES) or ".quant_state." in name:
        return 0
    if entry.get("dtype") == "U8" and (name.endswith(PACKED_SUFFIXES) or name in bnb_packed):
        return 2 * numel
    return numel


def safetensors_parameters(path: str | os.PathLike) -> int:
    """Parameters in one safetensors file, read from its JSON header (the first 8 bytes give its length);
    packed 4-bit tensors count two per byte, quantisation scales and state none."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    # a bitsandbytes 4-bit weight is U8 beside its `<weight>.quant_state.bitsandbytes__nf4|fp4` entry
    bnb_packed = {n.split(".quant_state.")[0] for n in header if ".quant_state." in n}
    return sum(_tensor_parameters(name, entry, bnb_packed) for name, entry in header.items() if name != "__metadata__")


def _first(config: Mapping[str, Any], *keys: str) -> Any:
    return next((config[k] for k in keys if config.get(k) is not None), None)


def _attention(config: Mapping[str, Any], hidden: int) -> int:
    """One layer's attention: q, k, v, o projections (grouped-query, explicit head_dim) with their biases."""
    heads = _first(config, "num_attention_heads", "n_head") or 1
    kv_heads = _first(config, "num_key_value_heads") or heads
    head_dim = config.get("head_dim") or hidden // heads
    q_dim, kv_dim = heads * head_dim, kv_heads * head_dim
    weights = hidden * (q_dim + 2 * kv_dim) + q_dim * hidden
    model_type = config.get("model_type")
    if config.get("attention_bias"):
        biases = q_dim + 2 * kv_dim + hidden
    elif model_type in QKV_BIAS_MODEL_TYPES:
        biases = q_dim + 2 * kv_dim
    else:
        biases = 0
    sinks = heads if model_type in SINK_MODEL_TYPES else 0
    return weights + biases + sinks


def _mlp(config: Mapping[str, Any], hidden: int, inner: int) -> int:
    """One layer's MLP: dense, or `experts` copies of it plus a router for a mixture of experts."""
    gated = config.get("model_type") in GATED_MODEL_TYPES
    experts = _first(config, "num_local_experts", "num_experts", "n_routed_experts")
    if not experts:
        return (3 if gated else 2) * hidden * inner
    expert_inner = _first(config, "moe_intermediate_size", "expert_intermediate_size") or inner
    per_expert = (3 if gated else 2) * hidden * expert_inner
    biased = config.get("model_type") in EXPERT_BIAS_MODEL_TYPES
    if biased:
        per_expert += (2 if gated else 1) * expert_inner + hidden
    router = hidden * experts + (experts if biased else 0)
    return experts * per_expert + router


def estimate_from_config(config: Mapping[str, Any]) -> int | None:
    """Parameters of a transformer decoder or encoder from its config.json (None when shape keys are
    missing): exact for llama, qwen2, mistral and gpt_oss; close for other standard blocks."""
    hidden = _first(config, "hidden_size", "n_embd", "d_model")
    layers = _first(config, "num_hidden_layers", "n_layer", "num_layers")
    vocab = _first(config, "vocab_size")
    if not (hidden and layers and vocab):
        return None
    inner = _first(config, "intermediate_size", "n_inner", "ffn_dim") or 4 * hidden
    gated = config.get("model_type") in GATED_MODEL_TYPES
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings", True) else 2)
    positions = (_first(config, "max_position_embeddings", "n_positions") or 0) * hidden if not gated else 0
    norms = 2 * hidden if gated else 0  # RMSNorm weights: two per layer (the final one is added below)
    per_layer = _attention(config, hidden) + _mlp(config, hidden, inner) + norms
    return int(embeddings + positions + layers * per_layer + (hidden if gated else 0))


def _directory_parameters(path: Path) -> int | None:
    shards = sorted(path.glob("*.safetensors"))
    if shards:
        return sum(safetensors_parameters(s) for s in shards)
    config = path / "config.json"
    if config.is_file():
        return estimate_from_config(json.loads(config.read_text(encoding="utf-8")))
    return None


def _tiny_parameters(arch: str) -> int:
    config = {
        "hidden_size": SIZES["hidden"],
        "num_hidden_layers": SIZES["layers"],
        "vocab_size": TINY_VOCAB,
        "intermediate_size": SIZES["intermediate"],
        "num_attention_heads": SIZES["heads"],
        "max_position_embeddings": SIZES["positions"],
        "model_type": arch,
    }
    return estimate_from_config(config) or 0


def _hub_cache_directory(name: str, revision: str | None) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "config.json", revision=revision)
    except (ImportError, ValueError):
        return None
    return Path(found).parent if isinstance(found, str) else None


def parameter_count(name_or_path: str, revision: str | None = None, workdir: str | os.PathLike = ".") -> int | None:
    """Parameters of the model named by model.name_or_path; None when it is not on disk (a hub id not yet
    downloaded and with no stored config.json), so the caller falls back to its default size."""
    if name_or_path.startswith(TINY_PREFIX):
        return _tiny_parameters(name_or_path[len(TINY_PREFIX) :])
    if name_or_path.startswith(TWIN_PREFIX):
        hub_id = name_or_path[len(TWIN_PREFIX) :]
        return estimate_from_config(twin_config(hub_id)) if stored_config(hub_id) else None
    if name_or_path.startswith(EMBEDDED_PREFIX):
        try:
            directory: Path | None = Path(resolve_embedded(name_or_path[len(EMBEDDED_PREFIX) :]))
        except ValueError:
            return None
    elif (Path(workdir) / name_or_path).is_dir():
        directory = Path(workdir) / name_or_path
    else:
        # a hub id not downloaded yet: the stored real config.json, when tunetrace ships one (models/configs/)
        directory = _hub_cache_directory(name_or_path, revision) or stored_config_dir(name_or_path)
    if directory is None:
        return None
    try:
        return _directory_parameters(directory)
    except (OSError, ValueError, KeyError, struct.error) as err:
        log.warning("could not count the parameters of %s (%s)", name_or_path, err)
        return None
