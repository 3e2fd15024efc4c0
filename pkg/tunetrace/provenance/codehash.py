"""Which code shaped a rule's outputs, derived from imports (never listed by hand).

A rule runs its workflow script; the script imports `tunetrace` modules, which import others. The
transitive closure of those imports within the package (found with `ast`, nothing is imported) is
the code of the rule. Imports inside functions count (they run when called); imports under
`if TYPE_CHECKING:` do not (they never run). Task types are imported by name through the registry,
so a task-typed rule adds its type's module and that module's closure.

Content hashes of those files go into each rule's params: editing a module reruns exactly the rules
whose closure holds it, and touching a file without changing it reruns nothing. Imports no torch.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "tunetrace"
HASH_CHARS = 16


def _file_hash(path: Path) -> str:
    # Always the bytes, never a cache keyed on mtime and size: an edit that keeps the size and lands in
    # the same mtime tick (or whose mtime is restored) must still change the hash.
    return hashlib.sha256(path.read_bytes()).hexdigest()[:HASH_CHARS]


def module_file(pkg_root: Path, module: str) -> Path | None:
    """The source file of `module` (a.b.c -> a/b/c.py or a/b/c/__init__.py) under `pkg_root`, if it exists."""
    base = pkg_root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> Iterable[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: at module level or in functions, not under TYPE_CHECKING."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module an ImportFrom names (relative imports resolved against `module`)."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def direct_imports(pkg_root: Path, path: Path, module: str) -> frozenset[str]:
    """The package modules `path` (the source of `module`, "" for a script) imports directly."""
    names = _imported_names(path.read_bytes(), str(path), module, path.name == "__init__.py")
    # which names are package modules is asked of the file system each time (a new module file counts)
    return frozenset(n for n in names if module_file(pkg_root, n))


@functools.cache
def _imported_names(source: bytes, filename: str, module: str, is_package: bool) -> frozenset[str]:
    """Every `tunetrace...` name the source imports (cached on the bytes: an edited file is re-parsed)."""
    tree = ast.parse(source, filename=filename)
    found: set[str] = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            target = _absolute(node, module, is_package)
            # `from pkg import name`: name is a submodule or an attribute of pkg
            names = [target] + [f"{target}.{alias.name}" for alias in node.names]
        found.update(n for n in names if n.split(".")[0] == PACKAGE)
    return frozenset(found)


def _with_parents(module: str) -> list[str]:
    """A module and the packages above it: importing a.b.c runs a/__init__.py and a/b/__init__.py too."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def closure(pkg_root: str | Path, roots: Iterable[str]) -> set[str]:
    """Every package module that importing `roots` can run."""
    pkg_root = Path(pkg_root)
    seen: set[str] = set()
    todo = [m for root in roots for m in _with_parents(root)]
    while todo:
        module = todo.pop()
        path = module_file(pkg_root, module)
        if module in seen or path is None:
            continue
        seen.add(module)
        for imported in direct_imports(pkg_root, path, module):
            todo.extend(_with_parents(imported))
    return seen


def script_closure(pkg_root: str | Path, script: str | Path, extra_roots: Iterable[str] = ()) -> set[str]:
    """The package modules a workflow script runs, plus `extra_roots` (a task type's module) and theirs."""
    pkg_root = Path(pkg_root)
    roots = set(direct_imports(pkg_root, Path(script), "")) | set(extra_roots)
    return closure(pkg_root, roots)


def code_hashes(pkg_root: str | Path, script: str | Path, repo_root: str | Path,
                extra_roots: Iterable[str] = ()) -> dict[str, str]:
    """{repo-relative path: content hash} of the script and every package module it runs."""
    pkg_root, repo_root = Path(pkg_root), Path(repo_root)
    files = [module_file(pkg_root, m) for m in script_closure(pkg_root, script, extra_roots)]
    files = [f for f in files if f is not None] + [Path(script)]
    return {f.resolve().relative_to(repo_root.resolve()).as_posix(): _file_hash(f.resolve()) for f in sorted(files)}
