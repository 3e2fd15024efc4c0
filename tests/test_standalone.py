"""The package stands alone: nothing under pkg/ finds files above pkg/ by walking up from its own location,
and what it needs at run time (schemas, DeepSpeed configs) ships inside it as package data."""

from __future__ import annotations

import ast
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
    source = ("A = Path(__file__).resolve().parents[3]\nB = Path(__file__).parent.parent.parent.parent\n"
              "C = PKG_DIR.parents[1]\nD = Path(__file__).resolve().parents[2]\nE = Path(__file__).parent.parent\n")
    assert [p.split(":")[0] for p in upward_reaches(source, 2)] == ["line 1", "line 2", "line 3"]


def test_no_module_reaches_above_pkg() -> None:
    """No module under pkg/ walks up from its own file past pkg/ (to config/, the Snakefile, the checkout)."""
    problems = []
    for path in sorted(PKG_ROOT.rglob("*.py")):
        levels = len(path.relative_to(PKG_ROOT).parts) - 1
        problems += [f"{path.relative_to(REPO)}: {p}" for p in upward_reaches(path.read_text(encoding="utf-8"), levels)]
    assert not problems, "ship the file as package data, or take its path as an argument:\n" + "\n".join(problems)


@pytest.mark.parametrize("data", ["training/deepspeed/zero2.json", "training/deepspeed/zero3.json",
                                  "schema/config.schema.yaml"])
def test_runtime_files_are_declared_package_data(data: str) -> None:
    """Each data file the package reads at run time lies in it and matches a package-data pattern."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["tunetrace"]
    assert (PKG_ROOT / "tunetrace" / data).is_file()
    assert any(Path(data).match(pattern) for pattern in patterns), f"pyproject package-data lacks {data}"
