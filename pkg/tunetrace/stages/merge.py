"""Stage of rule merge_adapter: fold a LoRA adapter into the base weights, for any task type, and save a
standalone model (verify_merge proves it equals the adapter model)."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from tunetrace import artifacts as A
from tunetrace.config import ModelSpec, TaskSpec
from tunetrace.fileio import atomic_dir, write_json
from tunetrace.models.loading import parameter_counts
from tunetrace.models.names import resolve_model_path
from tunetrace.models.placement import placement_for
from tunetrace.models.quantization import merge_note
from tunetrace.tasks.dispatch import get_task_type

log = logging.getLogger(__name__)


def merge_adapter(
    model_spec: ModelSpec, task: TaskSpec, adapter_dir: str | os.PathLike, out_dir: str | os.PathLike
) -> dict[str, Any]:
    """Fold the adapter into the base weights; save a standalone model (loadable without PEFT)."""
    task_type = get_task_type(task.type)
    # a 4-bit (QLoRA) base is merged unquantised: folding into packed weights would requantise the sum
    base_spec = dataclasses.replace(model_spec, quantization=None)
    placement = placement_for(base_spec)
    merged = task_type.load_adapter_model(base_spec, task, adapter_dir, placement=placement).merge_and_unload()
    note = merge_note(resolve_model_path(model_spec.name_or_path), model_spec.quantization)
    return save_merged(
        merged, task_type.load_tokenizer(model_spec, str(adapter_dir)), model_spec, adapter_dir, out_dir, note
    )


def save_merged(
    merged: Any,
    tokenizer: Any,
    model_spec: ModelSpec,
    adapter_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    quantization: str | None = None,
) -> dict[str, Any]:
    """Write a merged model, its tokenizer and merge metadata as one atomic directory; `quantization` says how
    a quantised base was merged (models.quantization.merge_note)."""
    info = {
        "base_model": model_spec.name_or_path,
        "adapter": str(adapter_dir),
        "parameters": parameter_counts(merged),
        "placement": placement_for(model_spec).to_dict(),
    }
    if quantization:
        info["quantization"] = quantization
        log.info("%s", quantization)
    with atomic_dir(out_dir) as tmp:
        merged.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        write_json(Path(tmp) / A.MERGE_METADATA, info)
    log.info("merged %s into %s", adapter_dir, out_dir)
    return info
