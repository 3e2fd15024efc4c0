"""How quantised base weights are loaded: the `from_pretrained` arguments for a checkpoint's own quantisation
(MXFP4) and for the optional bitsandbytes 4-bit base of QLoRA (config `model.quantization`).

- MXFP4 (gpt-oss ships its experts so): dequantised to bfloat16 at load, for training and for merging, as the
  model's own fine-tuning recipe does (`Mxfp4Config(dequantize=True)`); said in the log. Gradients cannot
  flow through packed 4-bit experts, and a merged model is written in bf16.
- `bnb_4bit`: the base in NF4 with bf16 compute (QLoRA); needs the bitsandbytes package. A LoRA merge then
  loads the base without it (dequantised, bf16) and records that in the merge record.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunetrace.models.names import ModelError

log = logging.getLogger(__name__)

QUANT_KEY = "model.quantization"
MXFP4 = "mxfp4"
BNB_4BIT = "bnb_4bit"
PACKED_SOURCES = ("_blocks", "_scales")  # MXFP4 checkpoint tensor names


def checkpoint_quantization(source: str | Path) -> str | None:
    """The quant_method of the checkpoint in directory `source` (None: not quantised, or not a directory)."""
    config = Path(source) / "config.json"
    if not config.is_file():
        return None
    quant = json.loads(config.read_text(encoding="utf-8")).get("quantization_config") or {}
    return quant.get("quant_method")


def quantization_kwargs(
    config: Mapping[str, Any], requested: str | None = None, for_merge: bool = False
) -> dict[str, Any]:
    """`from_pretrained` arguments for a checkpoint whose config.json is `config` and for `requested`
    (model.quantization); empty for an unquantised base. `for_merge` loads a 4-bit base dequantised."""
    import torch

    method = (config.get("quantization_config") or {}).get("quant_method")
    if method == MXFP4:
        from transformers import Mxfp4Config

        log.info(
            "MXFP4 checkpoint: expert weights dequantised to bfloat16 for %s (the model's own fine-tuning recipe)",
            "merging" if for_merge else "training",
        )
        return {"quantization_config": Mxfp4Config(dequantize=True), "dtype": torch.bfloat16}
    if requested == BNB_4BIT and not for_merge:
        return _bnb_4bit_kwargs()
    return {}


def _bnb_4bit_kwargs() -> dict[str, Any]:
    import torch

    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelError(
            f"invalid config at '{QUANT_KEY}': bnb_4bit needs the bitsandbytes package, which is "
            "not installed; `pip install bitsandbytes` (CUDA GPU), or set it to null"
        )
    from transformers import BitsAndBytesConfig

    log.info("loading the base in bitsandbytes NF4 4-bit with bfloat16 compute (QLoRA)")
    return {
        "quantization_config": BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16,
            bnb_4bit_use_double_quant=True,
        ),
        "dtype": torch.bfloat16,
    }


def source_config(source: str | Path) -> dict[str, Any]:
    """config.json of a model directory as a dict ({} for a hub id: its quantisation is read at load)."""
    path = Path(source) / "config.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def merge_note(source: str | Path, requested: str | None) -> str | None:
    """What the merge record says about a quantised base (None when the base is not quantised)."""
    method = checkpoint_quantization(source)
    if method == MXFP4:
        return "base weights MXFP4: the adapter was merged into the bfloat16 dequantised base"
    if requested == BNB_4BIT:
        return "trained on a bitsandbytes 4-bit base: the adapter was merged into the unquantised base (bf16)"
    return None


def forget_packed_layout(model: Any) -> Any:
    """Drop the MXFP4 load conversions of a dequantised model: saving it (a full run's final model, a merged
    model) would otherwise reverse them and write bf16 tensors under the packed `*_blocks` names."""
    conversions = getattr(model, "_weight_conversions", None)
    if conversions:
        model._weight_conversions = [
            c
            for c in conversions
            if not any(str(p).endswith(PACKED_SOURCES) for p in getattr(c, "source_patterns", ()))
        ] or None
    return model
