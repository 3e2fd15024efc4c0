"""tunetrace.provenance.codehash: the code of a rule is the import closure of its script, found with ast.

Unit tests on a fake `tunetrace` package written into tmp_path (nothing is imported from it), plus
checks on the real package that the task type's module decides which files an evaluation depends on.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from conftest import REPO
from tunetrace import registry
from tunetrace.provenance import codehash
from tunetrace.provenance.codehash import (
    CodeIndex,
    ImportsCache,
    closure,
    code_hashes,
    direct_imports,
    script_closure,
)

FAKE = {
    "tunetrace/__init__.py": "",
    # absolute import of a nested module, relative import of a sibling, TYPE_CHECKING-only imports
    "tunetrace/core.py": (
        "from __future__ import annotations\n"
        "import os\n"
        "import numpy as np\n"
        "import tunetrace.util.strings\n"
        "from . import helpers\n"
        "from typing import TYPE_CHECKING\n"
        "import typing\n"
        "if TYPE_CHECKING:\n"
        "    from tunetrace.typing_only import Thing\n"
        "if typing.TYPE_CHECKING:\n"
        "    import tunetrace.typing_only_attr\n"
        "else:\n"
        "    from tunetrace import runtime_else\n"
    ),
    # an import inside a function runs when the function is called
    "tunetrace/helpers.py": "def load():\n    from tunetrace.lazy import value\n    return value\n",
    "tunetrace/lazy.py": "value = 1\n",
    "tunetrace/runtime_else.py": "",
    "tunetrace/typing_only.py": "class Thing: ...\n",
    "tunetrace/typing_only_attr.py": "",
    "tunetrace/util/__init__.py": "",
    # two-level relative import naming a submodule, and `from pkg import name` naming an attribute
    "tunetrace/util/strings.py": "from ..sub import mod\nfrom tunetrace.sub import CONSTANT\n",
    "tunetrace/sub/__init__.py": "CONSTANT = 3\n",
    "tunetrace/sub/mod.py": "from .. import leaf\n",
    "tunetrace/leaf.py": "",
    "tunetrace/unrelated.py": "import tunetrace.lazy\n",
    "tunetrace/deep/__init__.py": "",
    "tunetrace/deep/er/__init__.py": "",
    "tunetrace/deep/er/leaf.py": "",
    "tunetrace/task_a.py": "from tunetrace.deep.er import leaf\n",
}
CORE_CLOSURE = {
    "tunetrace",
    "tunetrace.core",
    "tunetrace.util",
    "tunetrace.util.strings",
    "tunetrace.helpers",
    "tunetrace.lazy",
    "tunetrace.runtime_else",
    "tunetrace.sub",
    "tunetrace.sub.mod",
    "tunetrace.leaf",
}


@pytest.fixture
def fake(tmp_path: Path) -> Path:
    """A repository root holding pkg/tunetrace/... and scripts/rule.py (which imports tunetrace.core)."""
    for rel, text in FAKE.items():
        path = tmp_path / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    script = tmp_path / "scripts" / "rule.py"
    script.parent.mkdir()
    script.write_text("import sys\nfrom tunetrace.core import run\n\nrun(snakemake)\n")
    return tmp_path


def test_direct_imports_resolves_absolute_relative_and_submodule_imports(fake: Path) -> None:
    pkg = fake / "pkg"
    core = direct_imports(pkg, pkg / "tunetrace" / "core.py", "tunetrace.core")
    # `from . import helpers` names the package and its submodule; third-party and stdlib are dropped
    assert core == {"tunetrace", "tunetrace.util.strings", "tunetrace.helpers", "tunetrace.runtime_else"}
    strings = direct_imports(pkg, pkg / "tunetrace" / "util" / "strings.py", "tunetrace.util.strings")
    assert strings == {"tunetrace.sub", "tunetrace.sub.mod"}  # CONSTANT is an attribute, not a module
    # relative import from inside a package's __init__-less module one level down
    assert direct_imports(pkg, pkg / "tunetrace" / "sub" / "mod.py", "tunetrace.sub.mod") == {
        "tunetrace",
        "tunetrace.leaf",
    }
    assert direct_imports(pkg, pkg / "tunetrace" / "helpers.py", "tunetrace.helpers") == {"tunetrace.lazy"}


def test_relative_import_from_a_package_init_resolves_against_the_package(fake: Path) -> None:
    pkg = fake / "pkg"
    init = pkg / "tunetrace" / "util" / "__init__.py"
    init.write_text("from . import strings\n")
    assert direct_imports(pkg, init, "tunetrace.util") == {"tunetrace.util", "tunetrace.util.strings"}


def test_closure_follows_imports_and_skips_type_checking(fake: Path) -> None:
    found = closure(fake / "pkg", ["tunetrace.core"])
    assert found == CORE_CLOSURE
    assert "tunetrace.typing_only" not in found and "tunetrace.typing_only_attr" not in found
    assert "tunetrace.unrelated" not in found


def test_closure_includes_parent_package_inits(fake: Path) -> None:
    assert closure(fake / "pkg", ["tunetrace.deep.er.leaf"]) == {
        "tunetrace",
        "tunetrace.deep",
        "tunetrace.deep.er",
        "tunetrace.deep.er.leaf",
    }
    hashes = code_hashes(fake / "pkg", fake / "scripts" / "rule.py", fake, ["tunetrace.task_a"])
    assert {"pkg/tunetrace/deep/__init__.py", "pkg/tunetrace/deep/er/__init__.py"} <= set(hashes)


def test_script_closure_adds_extra_roots(fake: Path) -> None:
    script = fake / "scripts" / "rule.py"
    assert script_closure(fake / "pkg", script) == CORE_CLOSURE
    with_task = script_closure(fake / "pkg", script, ["tunetrace.task_a"])
    assert with_task - CORE_CLOSURE == {
        "tunetrace.task_a",
        "tunetrace.deep",
        "tunetrace.deep.er",
        "tunetrace.deep.er.leaf",
    }


def test_code_hashes_keys_are_the_script_and_its_closure(fake: Path) -> None:
    hashes = code_hashes(fake / "pkg", fake / "scripts" / "rule.py", fake)
    expected = {"scripts/rule.py"} | {
        "pkg/" + m.replace(".", "/") + ("/__init__.py" if (fake / "pkg" / m.replace(".", "/")).is_dir() else ".py")
        for m in CORE_CLOSURE
    }
    assert set(hashes) == expected
    assert all(len(h) == 16 for h in hashes.values())


@pytest.mark.parametrize(
    "edited",
    [
        "tunetrace/lazy.py",
        "tunetrace/sub/mod.py",
        "tunetrace/util/__init__.py",
        "tunetrace/__init__.py",
        "../scripts/rule.py",
    ],
)
def test_editing_a_module_in_the_closure_changes_the_hashes(fake: Path, edited: str) -> None:
    before = code_hashes(fake / "pkg", fake / "scripts" / "rule.py", fake)
    path = fake / "pkg" / edited
    path.write_text(path.read_text() + "\n# an edit\n")
    after = code_hashes(fake / "pkg", fake / "scripts" / "rule.py", fake)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {path.resolve().relative_to(fake.resolve()).as_posix()}


def test_one_index_gives_the_module_functions_answers_and_keeps_its_snapshot(fake: Path) -> None:
    """A DAG build's CodeIndex answers as fresh calls do; it reads each file once, so an edit after it was asked
    shows in a new index (or a module-level call), not in it."""
    script, extra = fake / "scripts" / "rule.py", ["tunetrace.task_a"]
    index = CodeIndex(fake / "pkg")
    assert index.script_closure(script) == script_closure(fake / "pkg", script)
    first = index.code_hashes(script, fake, extra)
    assert first == code_hashes(fake / "pkg", script, fake, extra)
    lazy = fake / "pkg" / "tunetrace" / "lazy.py"
    lazy.write_text(lazy.read_text() + "\n# an edit\n")
    assert index.code_hashes(script, fake, extra) == first
    fresh = code_hashes(fake / "pkg", script, fake, extra)
    assert fresh == CodeIndex(fake / "pkg").code_hashes(script, fake, extra)
    assert {k for k in first if first[k] != fresh[k]} == {"pkg/tunetrace/lazy.py"}


# The imports cache (ImportsCache): a file's parsed imports kept per machine under the hash of its bytes.


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files parsed from now on (codehash's in-process memo of parses is bypassed)."""
    seen: list[str] = []
    parse = codehash._imported_names.__wrapped__

    def counting(source: bytes, filename: str, module: str, is_package: bool) -> frozenset[str]:
        seen.append(Path(filename).name)
        return parse(source, filename, module, is_package)

    monkeypatch.setattr(codehash, "_imported_names", counting)
    return seen


def _hashes_with(cache_file: Path | None, fake: Path) -> dict[str, str]:
    index = CodeIndex(fake / "pkg", ImportsCache(cache_file))
    return index.code_hashes(fake / "scripts" / "rule.py", fake, ["tunetrace.task_a"])


def test_the_imports_cache_spares_the_parse_and_changes_no_answer(
    fake: Path, tmp_path: Path, parses: list[str]
) -> None:
    cache = tmp_path / "cache" / "imports.json"
    uncached = _hashes_with(None, fake)
    parsed = len(parses)
    assert parsed >= len(CORE_CLOSURE)
    assert _hashes_with(cache, fake) == uncached and cache.is_file()
    del parses[:]
    assert _hashes_with(cache, fake) == uncached  # a second process: same answer, nothing parsed
    assert parses == []


def test_an_edited_file_is_parsed_again_not_served_from_the_cache(
    fake: Path, tmp_path: Path, parses: list[str]
) -> None:
    """The key is the bytes, not the path: an edit that adds an import shows at once (fails if keyed by path)."""
    cache = tmp_path / "imports.json"
    before = _hashes_with(cache, fake)
    assert "pkg/tunetrace/unrelated.py" not in before
    lazy = fake / "pkg" / "tunetrace" / "lazy.py"
    lazy.write_text("import tunetrace.unrelated\nvalue = 1\n")
    del parses[:]
    after = _hashes_with(cache, fake)
    assert parses == ["lazy.py", "unrelated.py"]
    assert after == _hashes_with(None, fake) and "pkg/tunetrace/unrelated.py" in after


@pytest.mark.parametrize("content", ["{not json", '{"k": 3}', "[]"])
def test_a_corrupt_imports_cache_is_ignored_logged_and_rewritten(
    fake: Path, tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "imports.json"
    cache.write_text(content)
    assert _hashes_with(cache, fake) == _hashes_with(None, fake)
    assert caplog.text.count(f"ignoring the code imports cache {cache}") == 1
    assert ImportsCache(cache).get(next(iter(json.loads(cache.read_text())))) is not None


def test_an_unwritable_imports_cache_costs_only_time(
    fake: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cache = blocker / "imports.json"  # its directory cannot be made
    index = CodeIndex(fake / "pkg", ImportsCache(cache))
    (fake / "scripts" / "other.py").write_text("import tunetrace.unrelated\n")
    for script in (fake / "scripts" / "rule.py", fake / "scripts" / "other.py"):  # two rules, new files each
        assert index.code_hashes(script, fake) == code_hashes(fake / "pkg", script, fake)
    assert caplog.text.count(f"cannot write the code imports cache {cache}") == 1
    assert "TUNETRACE_CODE_IMPORTS_CACHE=off" in caplog.text


def test_the_imports_cache_keeps_the_newest_entries(
    fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "imports.json"
    cache.write_text(json.dumps({f"old{i}:m:0": [] for i in range(5)}))
    monkeypatch.setattr(codehash, "IMPORTS_CACHE_ENTRIES", 8)
    _hashes_with(cache, fake)
    kept = json.loads(cache.read_text())
    assert len(kept) == 8 and not any(k.startswith("old") for k in kept)  # this run parsed more than 8 files


def test_only_the_newest_imports_cache_files_are_kept(
    fake: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each version of codehash.py (and of Python) has its own file; the older ones are deleted as new ones come."""
    monkeypatch.setattr(codehash, "IMPORTS_CACHE_FILES", 2)
    for age in range(3):
        old = tmp_path / f"py3.0-old{age}.json"
        old.write_text("{}")
        os.utime(old, ns=(age * 10**9, age * 10**9))
    _hashes_with(tmp_path / "current.json", fake)
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["current.json", "py3.0-old2.json"]


def test_the_default_imports_cache_lives_in_the_machine_cache_and_can_be_switched_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUNETRACE_CACHE", str(tmp_path))
    path = ImportsCache.default().path
    assert path is not None and path.parent == tmp_path / "code-imports"
    assert path.name.startswith(f"py{sys.version_info[0]}.{sys.version_info[1]}-")
    monkeypatch.setenv("TUNETRACE_CODE_IMPORTS_CACHE", "off")
    assert ImportsCache.default().path is None


@pytest.mark.parametrize("edited", ["tunetrace/unrelated.py", "tunetrace/typing_only.py", "tunetrace/task_a.py"])
def test_editing_a_module_outside_the_closure_changes_nothing(fake: Path, edited: str) -> None:
    before = code_hashes(fake / "pkg", fake / "scripts" / "rule.py", fake)
    path = fake / "pkg" / edited
    path.write_text(path.read_text() + "\n# an edit\n")
    assert code_hashes(fake / "pkg", fake / "scripts" / "rule.py", fake) == before


def test_same_size_edit_changes_the_hash(fake: Path) -> None:
    """An edit that keeps the size (and may land in the same mtime tick) is still seen."""
    before = code_hashes(fake / "pkg", fake / "scripts" / "rule.py", fake)
    lazy = fake / "pkg" / "tunetrace" / "lazy.py"
    stat = lazy.stat()
    lazy.write_text("value = 2\n")
    os.utime(lazy, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime: only the bytes differ
    after = code_hashes(fake / "pkg", fake / "scripts" / "rule.py", fake)
    assert after["pkg/tunetrace/lazy.py"] != before["pkg/tunetrace/lazy.py"]


def test_adding_an_import_grows_the_closure(fake: Path) -> None:
    before = code_hashes(fake / "pkg", fake / "scripts" / "rule.py", fake)
    helpers = fake / "pkg" / "tunetrace" / "helpers.py"
    helpers.write_text(helpers.read_text() + "\ndef more():\n    import tunetrace.unrelated\n")
    after = code_hashes(fake / "pkg", fake / "scripts" / "rule.py", fake)
    assert set(after) - set(before) == {"pkg/tunetrace/unrelated.py"}


def test_a_new_module_file_joins_the_closure(fake: Path) -> None:
    """`from tunetrace.sub import CONSTANT` names an attribute until sub/CONSTANT.py exists (same bytes importing)."""
    before = closure(fake / "pkg", ["tunetrace.util.strings"])
    (fake / "pkg" / "tunetrace" / "sub" / "CONSTANT.py").write_text("")
    assert closure(fake / "pkg", ["tunetrace.util.strings"]) - before == {"tunetrace.sub.CONSTANT"}


def test_touching_every_file_leaves_the_hashes_unchanged(fake: Path) -> None:
    before = code_hashes(fake / "pkg", fake / "scripts" / "rule.py", fake)
    later = (fake / "scripts" / "rule.py").stat().st_mtime + 120
    for path in [*fake.rglob("*.py")]:
        os.utime(path, (later, later))
    assert code_hashes(fake / "pkg", fake / "scripts" / "rule.py", fake) == before


# The real package: the task type's module (the registry's entry) decides what an evaluation runs.

PKG = REPO / "pkg"
EVALUATE_RUN = REPO / "workflow_scripts" / "evaluate_run.py"
SQUAD = "tunetrace.evaluation.squad"


def evaluate_run_closure(task_type: str) -> set[str]:
    return script_closure(PKG, EVALUATE_RUN, [registry.entry(task_type).module])


def test_squad_scoring_is_code_of_qa_evaluation_only() -> None:
    """evaluate_run of an extractive_qa task runs squad.py; of a sequence_classification task, it does not.
    Fails if the closure derivation drops the task type's module (squad.py is reached only through it)."""
    assert "tunetrace.registry" in script_closure(PKG, EVALUATE_RUN)  # code.smk adds the type's module
    assert SQUAD not in script_closure(PKG, EVALUATE_RUN)
    assert SQUAD in evaluate_run_closure("extractive_qa")
    assert SQUAD not in evaluate_run_closure("sequence_classification")
    qa = code_hashes(PKG, EVALUATE_RUN, REPO, [registry.entry("extractive_qa").module])
    assert "pkg/tunetrace/evaluation/squad.py" in qa and "pkg/tunetrace/tasks/extractive_qa.py" in qa


@pytest.mark.parametrize("task_type", registry.task_type_names())
def test_every_task_type_module_is_in_its_evaluation_closure(task_type: str) -> None:
    """The type's module and the parents it runs are in; the script alone reaches no task type's module
    (else an edit to one type would rerun every type's evaluations)."""
    found = evaluate_run_closure(task_type)
    assert registry.entry(task_type).module in found
    assert {"tunetrace", "tunetrace.tasks", "tunetrace.tasks.base"} <= found
    type_modules = {registry.entry(t).module for t in registry.task_type_names()}
    assert not type_modules & script_closure(PKG, EVALUATE_RUN)
