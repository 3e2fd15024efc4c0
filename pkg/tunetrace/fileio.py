"""Small I/O helpers: canonical JSON, hashing, atomic writes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20


def cache_root() -> Path:
    """The per-machine cache (tiny models, model layouts, parsed imports): $TUNETRACE_CACHE, else ~/.cache/tunetrace."""
    return Path(os.environ.get("TUNETRACE_CACHE") or Path.home() / ".cache" / "tunetrace")


def prune_oldest(directory: str | os.PathLike, keep: int, pattern: str = "*.json") -> None:
    """Delete all but the `keep` most recently modified files of `directory` matching `pattern` (a per-machine
    cache's eviction; a file another process deleted meanwhile is not an error)."""
    files = []
    for path in Path(directory).glob(pattern):
        with contextlib.suppress(OSError):
            files.append((path.stat().st_mtime_ns, path))
    for _, path in sorted(files, reverse=True)[keep:]:
        with contextlib.suppress(OSError):
            path.unlink()


def cache_switched_off(variable: str) -> bool:
    """Whether the environment variable that switches one of those caches says off (0, off, false, no)."""
    return os.environ.get(variable, "").strip().lower() in ("0", "off", "false", "no")


def canonical_json(obj: Any) -> str:
    """Serialise with sorted keys and no whitespace, so equal configs give equal strings."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, naming the file when it is not valid JSON."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err


def json_text(obj: Any) -> str:
    """Pretty JSON as written to disk (sorted keys; NaN refused: JSON has none)."""
    return json.dumps(obj, indent=2, sort_keys=True, default=str, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write pretty JSON atomically: a temporary sibling, then a rename."""
    write_text(path, json_text(obj))


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write text atomically, so a reader never sees half a file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_texts(files: dict[str | os.PathLike, str]) -> None:
    """Write several files that belong together (one result, two renderings): every temporary sibling is
    written first, then all are renamed, so a failure while writing leaves every old file in place and no
    mix of old and new (the renames themselves cannot fail half-way on one filesystem, short of a crash)."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, text in files.items():
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            staged.append((tmp, target))
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
        for tmp, target in staged:
            os.replace(tmp, target)
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling directory that is renamed to `path` only on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def finite(obj: Any) -> Any:
    """NaN and infinities become null (JSON has none), recursively."""
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [finite(v) for v in obj]
    return None if isinstance(obj, float) and not math.isfinite(obj) else obj
