"""How many parameters the base model has, without torch and without loading weights.

The cluster requests (`tunetrace.cluster.requests`) scale with it. Counted from the safetensors
headers of a model on disk (exact), else estimated from its config.json (embeddings, attention and
MLP of a standard transformer block), else unknown. Runs at the DAG build, so it reads only file
headers and never touches the network.
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

log = logging.getLogger(__name__)

TINY_VOCAB = 30522  # the embedded MiniLM's WordPiece vocabulary, which tiny decoders use
# MLPs with a gate projection (SwiGLU/GeGLU): three h x I matrices instead of two
GATED_MODEL_TYPES = frozenset({"llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3",
                               "phi3", "olmo", "olmo2", "granite", "cohere", "deepseek_v3"})


def safetensors_parameters(path: str | os.PathLike) -> int:
    """Elements in one safetensors file, read from its JSON header (the first 8 bytes give its length)."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    count = 0
    for name, entry in header.items():
        if name != "__metadata__":
            numel = 1
            for dim in entry["shape"]:
                numel *= dim
            count += numel
    return count


def _first(config: Mapping[str, Any], *keys: str) -> Any:
    return next((config[k] for k in keys if config.get(k) is not None), None)


def estimate_from_config(config: Mapping[str, Any]) -> int | None:
    """Parameters of a standard transformer from its config.json (None when the shape keys are missing)."""
    hidden = _first(config, "hidden_size", "n_embd", "d_model")
    layers = _first(config, "num_hidden_layers", "n_layer", "num_layers")
    vocab = _first(config, "vocab_size")
    if not (hidden and layers and vocab):
        return None
    inner = _first(config, "intermediate_size", "n_inner", "ffn_dim") or 4 * hidden
    heads = _first(config, "num_attention_heads", "n_head") or 1
    kv_share = (_first(config, "num_key_value_heads") or heads) / heads  # grouped-query attention
    gated = config.get("model_type") in GATED_MODEL_TYPES
    attention = 2 * hidden * hidden + 2 * hidden * hidden * kv_share
    mlp = (3 if gated else 2) * hidden * inner
    embeddings = vocab * hidden * (1 if config.get("tie_word_embeddings", True) else 2)
    positions = (_first(config, "max_position_embeddings", "n_positions") or 0) * hidden if not gated else 0
    return int(embeddings + positions + layers * (attention + mlp))


def _directory_parameters(path: Path) -> int | None:
    shards = sorted(path.glob("*.safetensors"))
    if shards:
        return sum(safetensors_parameters(s) for s in shards)
    config = path / "config.json"
    if config.is_file():
        return estimate_from_config(json.loads(config.read_text(encoding="utf-8")))
    return None


def _tiny_parameters(arch: str) -> int:
    config = {"hidden_size": SIZES["hidden"], "num_hidden_layers": SIZES["layers"], "vocab_size": TINY_VOCAB,
              "intermediate_size": SIZES["intermediate"], "num_attention_heads": SIZES["heads"],
              "max_position_embeddings": SIZES["positions"], "model_type": arch}
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
    downloaded), so the caller falls back to its default size."""
    if name_or_path.startswith(TINY_PREFIX):
        return _tiny_parameters(name_or_path[len(TINY_PREFIX):])
    if name_or_path.startswith(EMBEDDED_PREFIX):
        try:
            directory: Path | None = Path(resolve_embedded(name_or_path[len(EMBEDDED_PREFIX):]))
        except ValueError:
            return None
    elif (Path(workdir) / name_or_path).is_dir():
        directory = Path(workdir) / name_or_path
    else:
        directory = _hub_cache_directory(name_or_path, revision)
    if directory is None:
        return None
    try:
        return _directory_parameters(directory)
    except (OSError, ValueError, KeyError, struct.error) as err:
        log.warning("could not count the parameters of %s (%s)", name_or_path, err)
        return None
