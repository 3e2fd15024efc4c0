"""The base model's per-matrix factorisations, computed once per machine and reused by every run of a study.

Every run's weight analysis compares its matrices with the same base model's: the base's full SVD (its left
singular vectors, the intruder dimensions' reference) is the same for all of them, and for a large model it is
most of the analysis. It is kept under `$TUNETRACE_CACHE/weight-factors/` (fileio.cache_root), one safetensors
file per matrix, named by a hash of the base model's identity, the matrix name and the factorisation's version.
The vectors are computed in float64 and stored in float32: half the disk (Llama-2-7B's are about 23 GB instead of
46), and an intruder count compares |cosines| with a threshold, where 1e-7 does not matter. The run that computes
them uses the float32 vectors too, so every run of a study gets the same numbers, cached or not. Written
atomically (a
temporary file renamed into place), so concurrent validation jobs never read a half-written factorisation;
two jobs computing the same one write the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tunetrace.fileio import cache_root

log = logging.getLogger(__name__)

CACHE_DIR = "weight-factors"
# bump when what is stored changes meaning (a different factorisation or precision)
FACTORS_VERSION = "left-singular-vectors-float32-v2"
STORED_DTYPE = np.float32


class FactorCache:
    """Left singular vectors of the base model `model_key`'s matrices, by matrix name; counts its hits and
    misses (logged by the analysis, checked by tests)."""

    def __init__(self, model_key: Any, directory: str | os.PathLike | None = None) -> None:
        self.directory = Path(directory) if directory is not None else cache_root() / CACHE_DIR
        self.model_key = json.dumps(model_key, sort_keys=True, default=str)
        self.hits = 0
        self.misses = 0

    def path(self, name: str) -> Path:
        digest = hashlib.sha256(f"{self.model_key}\0{name}\0{FACTORS_VERSION}".encode()).hexdigest()
        return self.directory / f"{digest[:32]}.safetensors"

    def left_vectors(self, name: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached vectors of matrix `name`, else `compute()`'s, stored for the next run: in STORED_DTYPE
        either way."""
        from safetensors.numpy import load_file, save

        path = self.path(name)
        if path.is_file():
            self.hits += 1
            return load_file(str(path))["u"]
        vectors = np.ascontiguousarray(compute(), dtype=STORED_DTYPE)
        self.misses += 1
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(save({"u": vectors}, metadata={"model": self.model_key, "matrix": name}))
        os.replace(tmp, path)
        return vectors
