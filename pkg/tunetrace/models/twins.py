"""Architecture twins: random-weight, shrunken copies of a real model, built from its stored config.json.

`twin:<hub id>` (e.g. `twin:openai/gpt-oss-20b`) is a model name like `tiny:llama`: the first use writes a
model of the same model_type, architecture class and module names as the real one (grouped-query ratio,
explicit head_dim, attention biases, layer_types pattern, mixture-of-experts with its router included) with
small sizes, seeded random weights and the tiny decoders' tokenizer, to a cache directory that every later
`from_pretrained` loads. A real checkpoint shipped in MXFP4 (gpt-oss) gets a twin whose expert weights are
stored in MXFP4 too (the `*_blocks`/`*_scales` layout and quantization_config of the real checkpoint), so
loading it goes through the real MXFP4 path (models/quantization.py).

The real config.json files live in models/configs/<org>--<name>/ (package data): parameter counts of the
real models are computed from them (models/size.py), never guessed, and a study naming the real hub id
plans without a download. Imports no torch at module level: names.py and size.py use it at DAG build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunetrace.fileio import atomic_dir, cache_root

log = logging.getLogger(__name__)

TWIN_PREFIX = "twin:"
TWIN_SEED = 0
CONFIGS_DIR = Path(__file__).resolve().parent / "configs"
TWIN_VOCAB = 30522  # the tiny decoders' tokenizer (the embedded MiniLM's WordPiece vocabulary)
# The twin's sizes: head_dim and key/value heads small, the query/key-value ratio of the real model kept
# (a mixture of experts gets `moe_layers`: enough to keep a sliding/full attention pattern visible)
TWIN_SIZES = {
    "hidden": 64,
    "layers": 2,
    "moe_layers": 4,
    "head_dim": 16,
    "kv_heads": 4,
    "intermediate": 128,
    "experts": 4,
    "experts_per_token": 2,
}
MXFP4_BLOCK = 32  # values per MXFP4 scale (16 bytes of two 4-bit values)


def stored_config_dir(hub_id: str) -> Path | None:
    """The directory of the stored config.json of `hub_id` (None when none is stored)."""
    directory = CONFIGS_DIR / hub_id.replace("/", "--")
    return directory if (directory / "config.json").is_file() else None


def stored_hub_ids() -> list[str]:
    """The hub ids whose config.json is stored (the names `twin:` accepts)."""
    return sorted(d.name.replace("--", "/", 1) for d in CONFIGS_DIR.iterdir() if (d / "config.json").is_file())


def stored_config(hub_id: str) -> dict[str, Any] | None:
    """The real config.json of `hub_id` as stored in the package (None when none is stored)."""
    directory = stored_config_dir(hub_id)
    return json.loads((directory / "config.json").read_text(encoding="utf-8")) if directory else None


def twin_problem(name: str) -> str | None:
    """Why `twin:<hub id>` cannot be built (None: it can)."""
    hub_id = name[len(TWIN_PREFIX) :]
    if stored_config_dir(hub_id) is None:
        return (
            f"no stored config.json for '{hub_id}'; use one of "
            f"{', '.join(TWIN_PREFIX + h for h in stored_hub_ids())}, or add its config.json under "
            f"tunetrace/models/configs/{hub_id.replace('/', '--')}/"
        )
    return None


def _heads(real: Mapping[str, Any], sizes: Mapping[str, int]) -> tuple[int, int]:
    """(query heads, key/value heads) of the twin, keeping the real model's grouped-query ratio."""
    heads = real.get("num_attention_heads") or 1
    ratio = max(1, heads // (real.get("num_key_value_heads") or heads))
    kv_heads = max(1, sizes["kv_heads"] // ratio)
    return kv_heads * ratio, kv_heads


def twin_config(hub_id: str, sizes: Mapping[str, int] = TWIN_SIZES, vocab_size: int = TWIN_VOCAB) -> dict[str, Any]:
    """The twin's config.json (torch-free): the stored real config with shrunken sizes."""
    real = stored_config(hub_id)
    if real is None:
        raise ValueError(f"model.name_or_path: {twin_problem(TWIN_PREFIX + hub_id)}")
    # token ids belong to the real vocabulary: build_twin sets those of the twin's tokenizer
    dropped = ("quantization_config", "transformers_version", "pad_token_id", "bos_token_id", "eos_token_id")
    config = {k: v for k, v in real.items() if k not in dropped}
    heads, kv_heads = _heads(real, sizes)
    moe = bool(real.get("num_local_experts") or real.get("num_experts"))
    layers = sizes["moe_layers"] if moe else sizes["layers"]
    if "head_dim" in real:  # an explicit head_dim need not be hidden / heads (gpt-oss: 64 heads x 64 > 2880)
        config["head_dim"], hidden = sizes["head_dim"], sizes["hidden"]
    else:
        hidden = heads * sizes["head_dim"]
    config.update(
        hidden_size=hidden,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        num_hidden_layers=layers,
        intermediate_size=sizes["intermediate"],
        vocab_size=vocab_size,
    )
    if "layer_types" in real:
        config["layer_types"] = real["layer_types"][:layers]
    if "max_window_layers" in real:
        config["max_window_layers"] = layers
    for key in ("num_local_experts", "num_experts"):
        if key in real:
            config[key] = sizes["experts"]
    for key in ("num_experts_per_tok", "experts_per_token"):
        if key in real:
            config[key] = sizes["experts_per_token"]
    return config


def is_mxfp4(hub_id: str) -> bool:
    """True when the real checkpoint stores its experts in MXFP4 (its twin does too)."""
    quant = (stored_config(hub_id) or {}).get("quantization_config") or {}
    return quant.get("quant_method") == "mxfp4"


def _pack_mxfp4(weight: Any) -> tuple[Any, Any]:
    """MXFP4 blocks and scales of an expert weight (experts, in, out), laid out as gpt-oss checkpoints store
    them: per output row, groups of 32 inputs share one power-of-two scale (E8M0, bias 127) and each value is
    the nearest FP4 E2M1 code, two codes per byte (low nibble first). Inverse of transformers' dequantiser."""
    import torch
    from transformers.integrations.mxfp4 import FP4_VALUES

    rows = weight.float().transpose(1, 2).contiguous()  # (experts, out, in)
    experts, out, inner = rows.shape
    groups = rows.reshape(experts, out, inner // MXFP4_BLOCK, MXFP4_BLOCK)
    peak = groups.abs().amax(dim=-1).clamp_min(2.0**-126)
    exponent = torch.ceil(torch.log2(peak / 6.0)).clamp(-127, 127)  # 6 is FP4's largest magnitude
    scaled = groups / torch.pow(2.0, exponent).unsqueeze(-1)
    lut = torch.tensor(FP4_VALUES, dtype=torch.float32)
    codes = (scaled.unsqueeze(-1) - lut).abs().argmin(dim=-1).to(torch.uint8)
    blocks = codes[..., 0::2] | (codes[..., 1::2] << 4)
    return blocks.contiguous(), (exponent + 127).to(torch.uint8).contiguous()


def _write_mxfp4(model: Any, directory: Path, real_quant: Mapping[str, Any]) -> None:
    """Re-save `model` with its expert weights in MXFP4 and the real checkpoint's quantization_config."""
    from safetensors.torch import save_file

    tensors = {}
    for name, tensor in model.state_dict().items():
        if name.endswith(("experts.gate_up_proj", "experts.down_proj")):
            tensors[f"{name}_blocks"], tensors[f"{name}_scales"] = _pack_mxfp4(tensor)
        else:
            tensors[name] = tensor.contiguous()
    for old in directory.glob("*.safetensors*"):
        old.unlink()
    save_file(tensors, str(directory / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    config["quantization_config"] = dict(real_quant)
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def build_twin(
    out_dir: str | os.PathLike,
    hub_id: str,
    seed: int = TWIN_SEED,
    sizes: Mapping[str, int] = TWIN_SIZES,
    dtype: str = "float32",
    device: str = "cpu",
) -> Path:
    """Write the twin of `hub_id` and its tokenizer to `out_dir` (atomically). `sizes` (keys of TWIN_SIZES)
    scale it, e.g. to about 1B parameters for the GPU proof (bench/gpu_proof.py)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from tunetrace.models.tiny import decoder_tokenizer

    tokenizer = decoder_tokenizer()
    values = twin_config(hub_id, sizes, len(tokenizer))
    values.update(
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id
    )
    config = AutoConfig.for_model(values.pop("model_type"), **values)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        if is_mxfp4(hub_id):
            _write_mxfp4(model, Path(tmp), (stored_config(hub_id) or {})["quantization_config"])
    log.info(
        "built the %s twin of %s (%d parameters%s) in %s",
        type(model).__name__,
        hub_id,
        sum(p.numel() for p in model.parameters()),
        ", experts in MXFP4" if is_mxfp4(hub_id) else "",
        out_dir,
    )
    return Path(out_dir)


def resolve_twin(name: str) -> str:
    """Directory of a `twin:<hub id>` model, building it on first use."""
    hub_id = name[len(TWIN_PREFIX) :]
    problem = twin_problem(name)
    if problem:
        raise ValueError(f"model.name_or_path: {problem}")
    # the twin's config in the name: a change of its sizes is a new directory, never a stale twin
    digest = hashlib.sha256(json.dumps(twin_config(hub_id), sort_keys=True).encode()).hexdigest()[:12]
    target = cache_root() / f"twin-{hub_id.replace('/', '--')}-seed{TWIN_SEED}-{digest}"
    if not (target / "config.json").is_file():
        # build privately, then rename: parallel jobs never delete or see a half-built model
        scratch = target.parent / f".{target.name}.{os.getpid()}"
        build_twin(scratch, hub_id)
        try:
            os.rename(scratch, target)
        except OSError:
            shutil.rmtree(scratch, ignore_errors=True)
            if not (target / "config.json").is_file():
                raise
    return str(target)
