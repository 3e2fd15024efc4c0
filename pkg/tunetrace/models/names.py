"""Model names: `embedded:<name>` (a model shipped in a PyPI package), `tiny:<arch>` (a random-weight
decoder built locally), `twin:<hub id>` (a random-weight, shrunken architecture twin of a real model whose
config.json tunetrace stores, models/twins.py), a local directory, or a hub id; and what each resolves to.

Imports no torch: config validation and the DAG build use it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tunetrace.models.embedded import EMBEDDED_PREFIX, resolve_embedded
from tunetrace.models.tiny import TINY_ARCHS, TINY_PREFIX, resolve_tiny
from tunetrace.models.twins import TWIN_PREFIX, resolve_twin, twin_problem

MODEL_KEY = "model.name_or_path"
# The shape of a hub id, `name` or `namespace/name` (huggingface_hub's rule); anything else is a path.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
SYMBOLIC_PREFIXES = (EMBEDDED_PREFIX, TINY_PREFIX, TWIN_PREFIX)


class ModelError(ValueError):
    """The base model (or a LoRA target in it) cannot be used; the message names the config key and the fix."""


def is_local(name_or_path: str) -> bool:
    """True for embedded models, tiny local decoders, twins and local directories (no network needed)."""
    return name_or_path.startswith(SYMBOLIC_PREFIXES) or Path(name_or_path).is_dir()


def is_symbolic(name_or_path: str) -> bool:
    """True for `embedded:`, `tiny:` and `twin:` names: they resolve on every machine, unlike the path they
    resolve to."""
    return name_or_path.startswith(SYMBOLIC_PREFIXES)


def resolve_model_path(name_or_path: str) -> str:
    """A path or hub id that `from_pretrained` understands; embedded names become package paths."""
    if name_or_path.startswith(TINY_PREFIX):
        return resolve_tiny(name_or_path)
    if name_or_path.startswith(TWIN_PREFIX):
        return resolve_twin(name_or_path)
    if not name_or_path.startswith(EMBEDDED_PREFIX):
        return name_or_path
    return resolve_embedded(name_or_path[len(EMBEDDED_PREFIX) :])


def set_offline_if_local(name_or_path: str) -> None:
    """Stop transformers/hub from reaching the network for models that are on disk."""
    if is_local(name_or_path):
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
            os.environ[var] = "1"
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _means_directory(name_or_path: str, workdir: Path) -> bool:
    """True when the name can only be a local directory: absolute, starting with `.` or `~`, not shaped like a
    hub id (more than one `/`, spaces, ...), or `a/b` whose `a` is a directory here (models/bert, models/ present)."""
    if Path(name_or_path).is_absolute() or name_or_path.startswith((".", "~")) or not HUB_ID.match(name_or_path):
        return True
    return "/" in name_or_path and (workdir / name_or_path.split("/")[0]).is_dir()


def _local_dir_problem(name_or_path: str, workdir: Path) -> str | None:
    """Why a local model directory cannot be loaded (None: it can, or the name is a hub id)."""
    path = workdir / name_or_path
    if not path.exists() and not _means_directory(name_or_path, workdir):
        return None  # a hub id: check_hub_cache (job environment) or the download decides
    if name_or_path.startswith("~"):
        return f"'{name_or_path}': '~' is not expanded; write the directory's full path"
    if not path.is_dir():
        what = "is a file, not a directory" if path.exists() else "does not exist"
        where = "" if Path(name_or_path).is_absolute() else f" (relative to the working directory {workdir.resolve()})"
        return (
            f"local model directory '{name_or_path}' {what}{where}; fix the path, or use a hub id "
            f"(namespace/name) or {EMBEDDED_PREFIX}<name>"
        )
    if not (path / "config.json").is_file():
        adapter = (
            " (it holds a LoRA adapter: name its base model instead)"
            if (path / "adapter_config.json").is_file()
            else ""
        )
        return (
            f"local model directory '{name_or_path}' holds no config.json{adapter}; point {MODEL_KEY} at "
            "the directory save_pretrained wrote (config.json beside the weights)"
        )
    return None


def check_model_name(name_or_path: str, workdir: str | os.PathLike = ".") -> None:
    """Fail at config validation (torch-free, pure filesystem) when the model name cannot resolve: an unknown
    embedded model or tiny architecture, or a local directory that is missing or holds no config.json. A hub
    id passes here; whether it can be fetched is checked in the job environment (check_hub_cache)."""
    problem = None
    if name_or_path.startswith(EMBEDDED_PREFIX):
        try:
            resolve_embedded(name_or_path[len(EMBEDDED_PREFIX) :])
        except ValueError as err:
            problem = str(err).removeprefix(f"{MODEL_KEY}: ")
    elif name_or_path.startswith(TINY_PREFIX):
        if name_or_path[len(TINY_PREFIX) :] not in TINY_ARCHS:
            problem = (
                f"unknown tiny architecture '{name_or_path[len(TINY_PREFIX) :]}'; use one of "
                f"{', '.join(TINY_PREFIX + a for a in TINY_ARCHS)}"
            )
    elif name_or_path.startswith(TWIN_PREFIX):
        problem = twin_problem(name_or_path)
    else:
        problem = _local_dir_problem(name_or_path, Path(workdir))
    if problem:
        raise ModelError(f"invalid config at '{MODEL_KEY}': {problem}")


def offline_var() -> str | None:
    """The variable that forbids network access to the hub (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE), if one is set."""
    return next((v for v in OFFLINE_VARS if os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")), None)


def check_hub_cache(name_or_path: str, revision: str | None = None) -> None:
    """Offline, a hub id must already be in the local Hugging Face cache: looked up there (config.json of the
    revision), never on the network, so the error is one line instead of the hub client's retries and traceback."""
    var = offline_var()
    if var is None or is_local(name_or_path):
        return
    from huggingface_hub import constants, try_to_load_from_cache

    try:
        found = try_to_load_from_cache(name_or_path, "config.json", revision=revision)
    except ValueError as err:  # not a valid repo id (huggingface_hub's HFValidationError)
        raise ModelError(
            f"{MODEL_KEY}: '{name_or_path}' is neither a local directory nor a valid hub id ({err}); "
            "fix the name or the path"
        ) from None
    if not isinstance(found, str):
        at = f" at revision '{revision}'" if revision else ""
        raise ModelError(
            f"{MODEL_KEY}: hub model '{name_or_path}'{at} is not in the local Hugging Face cache "
            f"({constants.HF_HUB_CACHE}) and {var} is set, so it cannot be downloaded; download it once with "
            f"network (`hf download {name_or_path}`, same HF_HOME), or set {MODEL_KEY} to a local "
            "directory holding it"
        )
