"""Which code shaped a rule's outputs, derived from imports (never listed by hand).

A rule runs its workflow script; the script imports `tunetrace` modules, which import others. The
transitive closure of those imports within the package (found with `ast`, nothing is imported) is
the code of the rule. Imports inside functions count (they run when called); imports under
`if TYPE_CHECKING:` do not (they never run). Task types are imported by name through the registry,
so a task-typed rule adds its type's module and that module's closure.

Content hashes of those files go into each rule's params: editing a module reruns exactly the rules
whose closure holds it, and touching a file without changing it reruns nothing. Imports no torch.

Parsing is the costly part (paid on every `snakemake` call), and its answer is a pure function of a file's bytes and
module name: `ImportsCache` keeps it per machine under `$TUNETRACE_CACHE/code-imports/`, keyed by the sha256 of the
bytes, in a file named by the Python version and this module's own hash. An edited file is a new key, so the cache
cannot serve a stale answer; `TUNETRACE_CODE_IMPORTS_CACHE=off` turns it off.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import logging
import sys
from collections.abc import Iterable
from pathlib import Path

from tunetrace.fileio import cache_root, cache_switched_off, prune_oldest, write_json

PACKAGE = "tunetrace"
HASH_CHARS = 16
IMPORTS_CACHE_DIR = "code-imports"
IMPORTS_CACHE_SWITCH = "TUNETRACE_CODE_IMPORTS_CACHE"
IMPORTS_CACHE_ENTRIES = 4096  # the newest kept: a few hundred files, many edits each
IMPORTS_CACHE_FILES = 8  # the most recently written kept: one per Python version and version of this module

log = logging.getLogger(__name__)


def _digest(path: Path) -> str:
    # Always the bytes, never a cache keyed on mtime and size: an edit that keeps the size and lands in
    # the same mtime tick (or whose mtime is restored) must still change the hash.
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


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
    return CodeIndex(pkg_root).direct_imports(path, module)


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


class ImportsCache:
    """`_imported_names` answers kept on disk across processes, keyed by the sha256 of a file's bytes.

    One JSON file per Python version and version of this module (the parser's rules are part of the answer).
    Reading a missing or unreadable file gives an empty cache (logged); a cache that cannot be written costs
    only the next call's parsing (logged). `save` merges with what other processes wrote meanwhile, keeps the
    newest IMPORTS_CACHE_ENTRIES, replaces the file atomically, and deletes all but the IMPORTS_CACHE_FILES most
    recently written files of the directory (those of older versions).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._entries = self._read() if path is not None else {}
        self._new: dict[str, list[str]] = {}
        self._unwritable = False

    @classmethod
    def default(cls) -> ImportsCache:
        """The machine's cache ($TUNETRACE_CACHE/code-imports/), or none when TUNETRACE_CODE_IMPORTS_CACHE=off."""
        if cache_switched_off(IMPORTS_CACHE_SWITCH):
            return cls(None)
        tag = f"py{sys.version_info[0]}.{sys.version_info[1]}-{_digest(Path(__file__))[:HASH_CHARS]}"
        return cls(cache_root() / IMPORTS_CACHE_DIR / f"{tag}.json")

    def _read(self, warn: bool = True) -> dict[str, list[str]]:
        assert self.path is not None
        if not self.path.is_file():
            return {}
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(entries, dict) or not all(
                isinstance(v, list) and all(isinstance(n, str) for n in v) for v in entries.values()
            ):
                raise ValueError("not an object of name lists")
            return entries
        except (OSError, UnicodeDecodeError, ValueError) as err:
            if warn:
                log.warning("ignoring the code imports cache %s (%s); parsing the package", self.path, err)
            return {}

    def get(self, key: str) -> frozenset[str] | None:
        names = self._new.get(key, self._entries.get(key))
        return None if names is None else frozenset(names)

    def put(self, key: str, names: frozenset[str]) -> None:
        if self.path is not None:
            self._new[key] = sorted(names)

    def save(self) -> None:
        """Write what this process parsed (nothing to do when it parsed nothing; after a failed write, kept in
        memory only: one warning per process, not one per rule)."""
        if self.path is None or not self._new or self._unwritable:
            return
        merged = {k: v for k, v in self._read(warn=False).items() if k not in self._new}  # warned when loaded
        merged.update(self._new)
        keep = dict(list(merged.items())[-IMPORTS_CACHE_ENTRIES:])
        try:
            write_json(self.path, keep)
        except OSError as err:
            self._unwritable = True
            log.warning(
                "cannot write the code imports cache %s (%s); every snakemake call parses the package "
                "again: set TUNETRACE_CACHE to a writable directory, or %s=off",
                self.path,
                err,
                IMPORTS_CACHE_SWITCH,
            )
            return
        self._entries, self._new = keep, {}
        prune_oldest(self.path.parent, IMPORTS_CACHE_FILES)


class CodeIndex:
    """The package's files as one DAG build sees them: each file's imports parsed and its bytes hashed once.

    For a process in which the files do not change: a Snakemake DAG build, whose rules' code params are fixed for
    its run anyway (rules/code.smk keeps one index per process; 13 rules of the demo read about 30 modules each,
    and each read them again). The module-level functions below build a fresh index per call, so a caller that
    edits files between calls always sees the current bytes. With an `ImportsCache`, a file whose bytes were
    parsed before (by any process on the machine) is not parsed again.
    """

    def __init__(self, pkg_root: str | Path, imports_cache: ImportsCache | None = None) -> None:
        self.pkg_root = Path(pkg_root)
        self._cache = imports_cache or ImportsCache(None)
        self._files: dict[str, Path | None] = {}
        self._imports: dict[Path, frozenset[str]] = {}
        self._digests: dict[Path, str] = {}

    def module_file(self, module: str) -> Path | None:
        if module not in self._files:
            self._files[module] = module_file(self.pkg_root, module)
        return self._files[module]

    def direct_imports(self, path: Path, module: str) -> frozenset[str]:
        """The package modules `path` (the source of `module`, "" for a script) imports directly, once per file."""
        if path not in self._imports:
            source, is_package = path.read_bytes(), path.name == "__init__.py"
            digest = self._digests.setdefault(path, hashlib.sha256(source).hexdigest())
            key = f"{digest}:{module}:{int(is_package)}"  # relative imports resolve against the module's name
            names = self._cache.get(key)
            if names is None:
                names = _imported_names(source, str(path), module, is_package)
                self._cache.put(key, names)
            self._imports[path] = frozenset(n for n in names if self.module_file(n))
        return self._imports[path]

    def _digest(self, path: Path) -> str:
        if path not in self._digests:
            self._digests[path] = _digest(path)
        return self._digests[path]

    def file_hash(self, path: Path) -> str:
        return self._digest(path)[:HASH_CHARS]

    def closure(self, roots: Iterable[str]) -> set[str]:
        """Every package module that importing `roots` can run."""
        seen: set[str] = set()
        todo = [m for root in roots for m in _with_parents(root)]
        while todo:
            module = todo.pop()
            path = self.module_file(module)
            if module in seen or path is None:
                continue
            seen.add(module)
            for imported in self.direct_imports(path, module):
                todo.extend(_with_parents(imported))
        return seen

    def script_closure(self, script: str | Path, extra_roots: Iterable[str] = ()) -> set[str]:
        """The package modules a workflow script runs, plus `extra_roots` (a task type's module) and theirs."""
        roots = set(self.direct_imports(Path(script), "")) | set(extra_roots)
        return self.closure(roots)

    def code_hashes(self, script: str | Path, repo_root: str | Path, extra_roots: Iterable[str] = ()) -> dict[str, str]:
        """{repo-relative path: content hash} of the script and every package module it runs."""
        repo = Path(repo_root).resolve()
        files = [self.module_file(m) for m in self.script_closure(script, extra_roots)]
        files = [f for f in files if f is not None] + [Path(script)]
        self._cache.save()
        return {f.resolve().relative_to(repo).as_posix(): self.file_hash(f.resolve()) for f in sorted(files)}


def closure(pkg_root: str | Path, roots: Iterable[str]) -> set[str]:
    """Every package module that importing `roots` can run."""
    return CodeIndex(pkg_root).closure(roots)


def script_closure(pkg_root: str | Path, script: str | Path, extra_roots: Iterable[str] = ()) -> set[str]:
    """The package modules a workflow script runs, plus `extra_roots` (a task type's module) and theirs."""
    return CodeIndex(pkg_root).script_closure(script, extra_roots)


def code_hashes(
    pkg_root: str | Path, script: str | Path, repo_root: str | Path, extra_roots: Iterable[str] = ()
) -> dict[str, str]:
    """{repo-relative path: content hash} of the script and every package module it runs."""
    return CodeIndex(pkg_root).code_hashes(script, repo_root, extra_roots)
