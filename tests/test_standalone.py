"""The package stands alone: nothing under pkg/ finds files above pkg/ by walking up from its own location,
what it needs at run time (schemas, DeepSpeed configs) ships inside it as package data, and a checkout's
Snakefile plans with that checkout's library."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PKG_ROOT = REPO / "pkg"


def _from_file(node: ast.expr) -> bool:
    """Whether the expression is a path built from the module's own `__file__`."""
    return any(isinstance(n, ast.Name) and n.id == "__file__" for n in ast.walk(node))


def _parent_chain(node: ast.Attribute) -> tuple[int, ast.expr]:
    """`x.parent.parent` -> (2, x)."""
    count, base = 0, node
    while isinstance(base, ast.Attribute) and base.attr == "parent":
        count, base = count + 1, base.value
    return count, base


def upward_reaches(source: str, levels_to_pkg: int) -> list[str]:
    """`parents[N]` / `.parent` chains in `source` that climb above pkg/ from `__file__` (the module lies
    `levels_to_pkg` directories below pkg/), and every `parents[N]` of a path not built from `__file__`."""
    problems = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "parents":
            index = node.slice.value if isinstance(node.slice, ast.Constant) else None
            base = node.value.value
            if not _from_file(base) or not isinstance(index, int) or index > levels_to_pkg:
                problems.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Attribute) and node.attr == "parent":
            count, base = _parent_chain(node)
            if _from_file(base) and not isinstance(base, ast.Attribute) and count - 1 > levels_to_pkg:
                problems.append(f"line {node.lineno}: {ast.unparse(node)}")
    return problems


def test_upward_reach_scan_finds_a_climb_out_of_pkg() -> None:
    """The scan flags parents[N] and .parent chains above pkg/, and parents[N] of other paths; not those inside."""
    source = (
        "A = Path(__file__).resolve().parents[3]\nB = Path(__file__).parent.parent.parent.parent\n"
        "C = PKG_DIR.parents[1]\nD = Path(__file__).resolve().parents[2]\nE = Path(__file__).parent.parent\n"
    )
    assert [p.split(":")[0] for p in upward_reaches(source, 2)] == ["line 1", "line 2", "line 3"]


def test_no_module_reaches_above_pkg() -> None:
    """No module under pkg/ walks up from its own file past pkg/ (to config/, the Snakefile, the checkout)."""
    problems = []
    for path in sorted(PKG_ROOT.rglob("*.py")):
        levels = len(path.relative_to(PKG_ROOT).parts) - 1
        problems += [f"{path.relative_to(REPO)}: {p}" for p in upward_reaches(path.read_text(encoding="utf-8"), levels)]
    assert not problems, "ship the file as package data, or take its path as an argument:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "data", ["training/deepspeed/zero2.json", "training/deepspeed/zero3.json", "schema/config.schema.yaml"]
)
def test_runtime_files_are_declared_package_data(data: str) -> None:
    """Each data file the package reads at run time lies in it and matches a package-data pattern."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["tunetrace"]
    assert (PKG_ROOT / "tunetrace" / data).is_file()
    assert any(Path(data).match(pattern) for pattern in patterns), f"pyproject package-data lacks {data}"


def _checkout_copy(target: Path, name: str) -> Path:
    """This repository's files (tracked and new, not ignored) in `target`, its library printing `name` on import."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        if (REPO / rel).is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, target / rel)
    init = target / "pkg" / "tunetrace" / "__init__.py"
    init.write_text(init.read_text() + f"\nimport sys\n\nsys.stderr.write('tunetrace library of {name}\\n')\n")
    return target


@pytest.mark.workflow
def test_each_checkout_plans_with_its_own_library(tmp_path: Path) -> None:
    """Two checkouts side by side: `snakemake -n` with each Snakefile imports that checkout's tunetrace, not the
    venv's editable install (a third checkout), from the Snakefile's first import on."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for name in ("first", "second"):
        checkout = _checkout_copy(tmp_path / name, name)
        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", "--dry-run", "--cores", "1", "--quiet", "rules"],
            capture_output=True,
            text=True,
            cwd=checkout,
            env=env,
        )
        assert proc.returncode == 0, proc.stderr[-4000:]
        loaded = [line for line in proc.stderr.splitlines() if line.startswith("tunetrace library of ")]
        assert loaded and set(loaded) == {f"tunetrace library of {name}"}, proc.stderr[-4000:]
