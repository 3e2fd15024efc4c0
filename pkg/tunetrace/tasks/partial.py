"""Per-batch results of a long run of forward passes, kept beside the output so a killed job resumes.

An inference job (the baseline, the final model's eval outputs, generation) writes each finished batch to
`.<output name>.partial/` beside its output, one safetensors file per batch, written atomically (a temporary
file renamed into place), so a kill leaves only whole batches. The directory carries the fingerprint of what
the batches depend on (model, data, settings); a rerun with the same fingerprint loads the finished batches
instead of recomputing them, a different one starts afresh. The stage assembles the output from all batches
and then removes the directory (`finish`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

FINGERPRINT_FILE = "fingerprint.json"
Batch = TypeVar("Batch")


def fingerprint(*parts: Any) -> str:
    """sha256 of the parts as canonical JSON (specs by their fields, paths and other objects by their text)."""

    def plain(value: Any) -> Any:
        is_spec = dataclasses.is_dataclass(value) and not isinstance(value, type)
        return dataclasses.asdict(value) if is_spec else str(value)

    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=plain).encode()).hexdigest()


def files_fingerprint(*paths: str | os.PathLike) -> list[list[Any]]:
    """Each file under `paths` (a file or a directory) by name, size and modification time: a cheap identity of
    a model's weights or a prepared split that changes whenever they are rewritten."""
    found = []
    for root in map(Path, paths):
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        found += [[str(p), p.stat().st_size, p.stat().st_mtime_ns] for p in files if p.exists()]
    return found


class BatchStore:
    """The finished batches of one job's forward passes, in `directory`, valid for one `key` (a fingerprint)."""

    def __init__(self, directory: str | os.PathLike, key: str) -> None:
        self.directory = Path(directory)
        self.key = key
        self.loaded = 0  # batches taken from an earlier attempt (logged, and counted by tests)
        marker = self.directory / FINGERPRINT_FILE
        if self.directory.exists() and (not marker.is_file() or json.loads(marker.read_text())["key"] != key):
            log.info("partial results in %s are of other inputs or settings: starting afresh", self.directory)
            shutil.rmtree(self.directory)
        if not self.directory.exists():
            self.directory.mkdir(parents=True)
            _atomic_write_bytes(marker, json.dumps({"key": key}).encode())

    @classmethod
    def beside(cls, out_path: str | os.PathLike, key: str) -> BatchStore:
        """The store of the output `out_path`: the hidden sibling `.<name>.partial`."""
        out = Path(out_path)
        return cls(out.with_name(f".{out.name}.partial"), key)

    def _path(self, name: str, index: int) -> Path:
        return self.directory / f"{name}_{index:06d}.safetensors"

    def load(self, name: str, index: int) -> dict[str, torch.Tensor] | None:
        """Batch `index` of the loop `name`, if an earlier attempt finished it."""
        from safetensors.torch import load_file

        path = self._path(name, index)
        if not path.is_file():
            return None
        self.loaded += 1
        return load_file(str(path))

    def save(self, name: str, index: int, tensors: dict[str, torch.Tensor]) -> None:
        """Keep batch `index` of the loop `name` (atomically: a kill leaves it whole or absent)."""
        from safetensors.torch import save

        _atomic_write_bytes(self._path(name, index), save({k: v.contiguous() for k, v in tensors.items()}))

    def finish(self) -> None:
        """The output is written: the batches are no longer needed."""
        if self.loaded:
            log.info("resumed: %d batches taken from the partial results of an earlier attempt", self.loaded)
        shutil.rmtree(self.directory, ignore_errors=True)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def run_batches(
    batches: Iterable[Batch], compute: Callable[[Batch], dict[str, torch.Tensor]], store: BatchStore | None, name: str
) -> list[dict[str, torch.Tensor]]:
    """`compute` of every batch, in order; with a store, batches an earlier attempt finished are loaded instead
    of computed, and each computed one is kept as soon as it is done. Tensors come back on the CPU."""
    results = []
    for index, batch in enumerate(batches):
        done = store.load(name, index) if store is not None else None
        if done is None:
            done = {k: v.detach().cpu() for k, v in compute(batch).items()}
            if store is not None:
                store.save(name, index, done)
        results.append(done)
    return results
