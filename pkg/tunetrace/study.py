"""Where a study lives: its directory, config files and the Snakefile that runs it, as snakemake takes them
(`--directory`, `--configfile`, `--snakefile`), so `tunetrace status|audit|doctor` read the same study as the
`snakemake` command beside them. Several studies run side by side, each in its own directory (docs/scale.md)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunetrace.config import ConfigError, load_yaml, validate_config

DEFAULT_CONFIG = Path("config") / "config.yaml"  # the Snakefile's embedded default, relative to the study directory


# A checkout: the Snakefile beside the pkg/ directory that holds this package (pyproject: packages under pkg/).
CHECKOUT_PKG_DIR = "pkg"


def package_checkout() -> Path | None:
    """The tunetrace checkout this package runs from, or None when it runs from an install (site-packages).

    The workflow (Snakefile, rules/, profiles/) lives only in a checkout, never in the package. It is known only
    when this package is imported from a checkout's pkg/ (an editable install, or pkg/ on sys.path as the Snakefile
    puts it): the one place the package looks above its import root, and only to check for that layout."""
    import_root = Path(__file__).resolve().parent.parent  # the sys.path entry that holds tunetrace/
    checkout = import_root.parent
    if import_root.name == CHECKOUT_PKG_DIR and (checkout / "Snakefile").is_file():
        return checkout
    return None


@dataclass(frozen=True)
class Study:
    directory: Path
    configfiles: tuple[Path, ...]  # absolute; empty: the Snakefile's embedded default
    snakefile: Path
    elsewhere: bool = False  # --snakefile or --directory given: the commands shown must name the Snakefile

    def snakemake_args(self, snakefile: bool | None = None) -> list[str]:
        """Options that make snakemake, run in `directory`, see this study (--snakefile when `snakefile`, by
        default when the study was named by --directory or --snakefile)."""
        args = ["--snakefile", str(self.snakefile)] if (self.elsewhere if snakefile is None else snakefile) else []
        return args + (["--configfile", *map(str, self.configfiles)] if self.configfiles else [])

    def config_paths(self) -> list[Path]:
        return list(self.configfiles) or [self.directory / DEFAULT_CONFIG]

    def describe(self) -> str:
        files = ", ".join(map(str, self.config_paths()))
        default = "" if self.configfiles else " (the embedded default: no --configfile given)"
        return f"study {self.directory}: config {files}{default}"


def add_study_options(parser: argparse.ArgumentParser) -> None:
    """--directory, --configfile, --snakefile as snakemake spells them."""
    parser.add_argument("--directory", "-d", default=".", help="the study directory (snakemake --directory)")
    parser.add_argument(
        "--configfile",
        nargs="+",
        default=[],
        metavar="FILE",
        help="the study's config file(s) (snakemake --configfile); relative to where you run this",
    )
    parser.add_argument(
        "--snakefile",
        "-s",
        default=None,
        help="the tunetrace Snakefile (default: ./Snakefile, else the one of this checkout)",
    )


def study_from_args(args: argparse.Namespace) -> Study:
    directory = Path(args.directory).resolve()
    if not directory.is_dir():
        raise ConfigError(f"--directory {args.directory}: no such directory")
    configs = tuple(Path(c).resolve() for c in args.configfile)
    for path in configs:
        if not path.is_file():
            raise ConfigError(f"--configfile {path}: no such file")
    snakefile = Path(args.snakefile) if args.snakefile else _default_snakefile(directory)
    if not snakefile.is_file():
        raise ConfigError(f"--snakefile {snakefile}: no such file")
    return Study(directory, configs, snakefile.resolve(), args.snakefile is not None or args.directory != ".")


def _default_snakefile(directory: Path) -> Path:
    """The study directory's Snakefile, else the working directory's, else the one of this package's checkout."""
    for candidate in (directory / "Snakefile", Path.cwd() / "Snakefile"):
        if candidate.is_file():
            return candidate
    checkout = package_checkout()
    if checkout is None:
        raise ConfigError(
            f"no Snakefile in {directory} or {Path.cwd()}, and this tunetrace "
            f"({Path(__file__).resolve().parent}) runs from an install, not from a checkout's "
            f"{CHECKOUT_PKG_DIR}/, so it knows no workflow: pass --snakefile <checkout>/Snakefile"
        )
    return checkout / "Snakefile"


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep merge, as snakemake merges several --configfile."""
    merged = dict(base)
    for key, value in update.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def load_study_config(study: Study) -> dict[str, Any]:
    """The study's config, validated and with the schema's defaults, as the workflow sees it."""
    config: dict[str, Any] = {}
    for path in study.config_paths():
        if not path.is_file():
            raise ConfigError(f"{path}: no config here; pass the study's --configfile (and --directory)")
        config = _merge(config, load_yaml(path) or {})
    return validate_config(config)
