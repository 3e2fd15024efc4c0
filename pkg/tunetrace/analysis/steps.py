"""The representation step directory: its settings, file names, writer and checked loader.

A step directory (`step_{NNNNNN}/`) holds one `layer_{i}.safetensors` per captured layer (tensor
`hidden`), an `attention_mask.safetensors` for token-level pooling, and `metadata.json` that
describes every file (shape, dtype, sha256), the probe set (ids and their hash), the model, the
run and the step. Step directories are written into a temporary sibling and renamed, so a
half-written step never exists; the loader re-checks every hash and shape.

Kept apart from extraction (representations.py) so that drift, which only reads steps, depends on
neither torch nor any task type.

Layer index 0 is the embeddings output, index i >= 1 the output of transformer block i - 1
(the `hidden_states` tuple of a Hugging Face model).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from tunetrace.config import spec_from_dict
from tunetrace.fileio import atomic_dir, read_json, sha256_file, write_json

if TYPE_CHECKING:
    import torch

METADATA = "metadata.json"
MASK_FILE = "attention_mask.safetensors"
TENSOR_KEY = "hidden"
STEP_PATTERN = re.compile(r"^step_(\d{6})$")


class RepresentationError(ValueError):
    """A step directory is missing, incomplete or does not match its metadata; names the file."""


@dataclasses.dataclass(frozen=True)
class RepresentationSpec:
    SCHEMA_SECTION: ClassVar[str] = "properties/representations"

    enabled: bool
    every_steps: int
    capture_step0: bool
    probe_size: int
    layers: tuple[int, ...] | None
    pooling: str
    dtype: str
    batch_size: int
    cka_batch_size: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RepresentationSpec:
        return spec_from_dict(cls, data)


def step_dir_name(step: int) -> str:
    return f"step_{int(step):06d}"


def layer_file_name(index: int) -> str:
    return f"layer_{int(index)}.safetensors"


def layer_name(index: int) -> str:
    return "embeddings" if index == 0 else f"block_{index - 1}"


def write_step(
    step_dir: str | os.PathLike, layers: Mapping[int, torch.Tensor], mask: torch.Tensor | None, info: Mapping[str, Any]
) -> dict[str, Any]:
    """Write a step directory atomically: layer files, optional mask, metadata with hashes."""
    from safetensors.torch import save_file

    with atomic_dir(step_dir) as tmp:
        entries = []
        for index in sorted(layers):
            tensor = layers[index]
            save_file({TENSOR_KEY: tensor}, str(tmp / layer_file_name(index)))
            entries.append(
                {
                    "index": index,
                    "name": layer_name(index),
                    "file": layer_file_name(index),
                    "shape": list(tensor.shape),
                    "dtype": str(tensor.dtype).replace("torch.", ""),
                    "sha256": sha256_file(tmp / layer_file_name(index)),
                }
            )
        mask_entry = None
        if mask is not None:
            save_file({TENSOR_KEY: mask}, str(tmp / MASK_FILE))
            mask_entry = {
                "file": MASK_FILE,
                "shape": list(mask.shape),
                "dtype": "int8",
                "sha256": sha256_file(tmp / MASK_FILE),
            }
        metadata = {
            **info,
            "layers": entries,
            "attention_mask": mask_entry,
            "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        }
        write_json(tmp / METADATA, metadata)
    return metadata


def _load_tensor(path: Path, entry: Mapping[str, Any]) -> np.ndarray:
    from safetensors.numpy import load_file

    if not path.is_file():
        raise RepresentationError(f"{path}: missing; the step directory is incomplete - rerun the job that wrote it")
    if sha256_file(path) != entry["sha256"]:
        raise RepresentationError(
            f"{path}: sha256 differs from {METADATA} (truncated or modified file); "
            "delete the run's representations and rerun"
        )
    try:
        array = load_file(str(path))[TENSOR_KEY]
    except Exception as err:  # noqa: BLE001 - any decoding failure is a broken file
        raise RepresentationError(f"{path}: cannot be read as safetensors ({err})") from err
    if list(array.shape) != list(entry["shape"]):
        raise RepresentationError(f"{path}: shape {list(array.shape)} differs from {METADATA} {entry['shape']}")
    return array


def load_step(step_dir: str | os.PathLike) -> tuple[dict[str, Any], dict[int, np.ndarray], np.ndarray | None]:
    """Metadata, layer arrays (float32) and mask of a step, every file checked against metadata."""
    step_dir = Path(step_dir)
    meta_path = step_dir / METADATA
    if not meta_path.is_file():
        raise RepresentationError(f"{meta_path}: missing; {step_dir} is not a complete step directory")
    meta = read_json(meta_path)
    layers = {e["index"]: _load_tensor(step_dir / e["file"], e).astype(np.float32) for e in meta["layers"]}
    mask = _load_tensor(step_dir / MASK_FILE, meta["attention_mask"]) if meta.get("attention_mask") else None
    return meta, layers, mask


def list_steps(run_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """(step, directory) of every complete-looking step directory, in step order."""
    found = []
    for child in Path(run_dir).iterdir() if Path(run_dir).is_dir() else []:
        match = STEP_PATTERN.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)
