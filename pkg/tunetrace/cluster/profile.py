"""Find and read a snakemake profile as snakemake would: a directory path, else a name under the user's
(${XDG_CONFIG_HOME:-~/.config}/snakemake) or the system's (/etc/xdg/snakemake) profiles, else, run from a
checkout, its profiles/<name>."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from tunetrace.config import ConfigError
from tunetrace.study import package_checkout


def profile_dir(name: str) -> Path:
    """The directory of profile `name` (a path or a name)."""
    user = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "snakemake"
    shipped = [package_checkout() / "profiles"] if package_checkout() else []  # only a checkout has profiles/
    places = [user, Path("/etc/xdg/snakemake"), *shipped]
    for candidate in (Path(name), *(place / name for place in places)):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise ConfigError(
        f"--profile {name}: no profile of that name or path (looked in {', '.join(map(str, places))}); "
        f"install it with `bash profiles/install.sh {name}`"
    )


def load_profile(name: str) -> dict[str, Any]:
    """The profile's config.yaml as a mapping (keys as snakemake's long options)."""
    path = profile_dir(name) / "config.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a profile is a mapping of snakemake options")
    return data
