"""Model names: `embedded:<name>` (a model shipped in a PyPI package), `tiny:<arch>` (a random-weight
decoder built locally), a local directory, or a hub id; and what each resolves to on disk.

Imports no torch: config validation and the DAG build use it.
"""

from __future__ import annotations

import os
from pathlib import Path

from tunetrace.models.embedded import EMBEDDED_PREFIX, resolve_embedded
from tunetrace.models.tiny import TINY_PREFIX, resolve_tiny


def is_local(name_or_path: str) -> bool:
    """True for embedded models, tiny local decoders and local directories (no network needed)."""
    return name_or_path.startswith((EMBEDDED_PREFIX, TINY_PREFIX)) or Path(name_or_path).is_dir()


def is_symbolic(name_or_path: str) -> bool:
    """True for `embedded:` and `tiny:` names: they resolve on every machine, unlike the path they resolve to."""
    return name_or_path.startswith((EMBEDDED_PREFIX, TINY_PREFIX))


def resolve_model_path(name_or_path: str) -> str:
    """A path or hub id that `from_pretrained` understands; embedded names become package paths."""
    if name_or_path.startswith(TINY_PREFIX):
        return resolve_tiny(name_or_path)
    if not name_or_path.startswith(EMBEDDED_PREFIX):
        return name_or_path
    return resolve_embedded(name_or_path[len(EMBEDDED_PREFIX):])


def set_offline_if_local(name_or_path: str) -> None:
    """Stop transformers/hub from reaching the network for models that are on disk."""
    if is_local(name_or_path):
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
            os.environ[var] = "1"
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


