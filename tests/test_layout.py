"""Package layout rules of pkg/tunetrace, checked from the source with `ast` (nothing is imported): every import
(in functions and under TYPE_CHECKING included) goes down the allowed-imports table, no import cycles, a torch-free
config/registry/code-hash path, task type names only under tasks/ (and in the registry), a docstring'd
__init__.py in every subpackage, and workflow scripts that are the job context plus one call into stages/."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

PKG_ROOT = REPO / "pkg"
PACKAGE = "tunetrace"
PACKAGE_DIR = PKG_ROOT / PACKAGE
TASKS_DIR = PACKAGE_DIR / "tasks"
REGISTRY_FILE = PACKAGE_DIR / "registry.py"  # where each task type's name is bound to its module


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    """Every module under pkg/tunetrace: dotted name -> source file."""
    return {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py")) if "__pycache__" not in p.parts}


def all_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement: module level, in functions and classes, and under `if TYPE_CHECKING:` (a type-only
    import is still a dependency of the reader, and the layers hold for it too)."""
    return [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_edges() -> tuple[list[tuple[str, str, int]], list[str]]:
    """(module, imported package module, line) of every package import, and the imports that name no module file.

    `import tunetrace.a.b` -> tunetrace.a.b; `from tunetrace.a import b` -> tunetrace.a.b when that module
    exists, else tunetrace.a (b is an attribute). No edge from a module to the packages above it: importing
    a submodule runs its parents' __init__.py, but those are docstring-only (test_every_subpackage_...).
    """
    modules = package_modules()
    edges, unresolved = [], []
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in all_imports(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _absolute(node, module, path.name == "__init__.py")
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                if target.split(".")[0] != PACKAGE:
                    continue
                if target in modules:
                    edges.append((module, target, node.lineno))
                else:
                    unresolved.append(f"{path.relative_to(REPO)}:{node.lineno}: imports {target}, which is no module")
    return edges, unresolved


def import_graph() -> tuple[dict[str, set[str]], list[str]]:
    """module -> package modules it imports (anywhere in it, type-only included), and the unresolved imports."""
    edges, unresolved = import_edges()
    graph: dict[str, set[str]] = {m: set() for m in package_modules()}
    for module, target, _ in edges:
        graph[module].add(target)
    return graph, unresolved


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components (iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def a_cycle(graph: dict[str, set[str]], members: list[str]) -> list[str]:
    """One concrete cycle through the first member of a strongly connected component (BFS back to it)."""
    start, inside = members[0], set(members)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & inside):
                if child == start:  # node -> start closes the cycle; walk node back to start
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    return members


def cyclic_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components that hold a cycle (several modules, or a self-import)."""
    return [c for c in strongly_connected(graph) if len(c) > 1 or c[0] in graph[c[0]]]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One concrete cycle per cyclic component."""
    return [a_cycle(graph, c) for c in cyclic_components(graph)]


# ---------------------------------------------------------------- (a) no import cycles


def test_cycle_finder_finds_cycles():
    """The finder itself: a three-module cycle and a self-import are reported, a DAG is not."""
    dag = {"a": {"b"}, "b": {"c"}, "c": set(), "e": {"a", "c"}}
    assert cycles(dag) == []
    cyclic = {**dag, "c": {"a"}, "d": {"d"}}
    assert sorted(map(tuple, cycles(cyclic))) == [("a", "b", "c", "a"), ("d", "d")]
    assert sorted(map(tuple, cyclic_components(cyclic))) == [("a", "b", "c"), ("d",)]


def test_import_graph_resolves_every_package_import():
    """Every `tunetrace...` import names a module file (a typo'd or moved module shows here by line)."""
    graph, unresolved = import_graph()
    assert not unresolved, "\n".join(unresolved)
    # sanity: the graph sees imports at module level, inside functions and under TYPE_CHECKING
    assert "tunetrace.tasks.dispatch" in graph["tunetrace.stages.prepare"]  # module level
    assert "tunetrace.data.readers" in graph["tunetrace.analysis.representations"]  # inside probe_for
    assert "tunetrace.config" in graph["tunetrace.tasks.base"]  # only under TYPE_CHECKING there


def test_package_has_no_import_cycles():
    """The module import graph of pkg/tunetrace (imports in functions and type-only imports included) has no cycle."""
    graph, _ = import_graph()
    found = cycles(graph)
    assert not found, "import cycles in pkg/tunetrace:\n" + "\n".join(" -> ".join(c) for c in found)


# ---------------------------------------------------------------- (a2) the allowed-imports table

# The ground floor: top-level modules that import only each other (no cycle among them, by the test above).
FLOOR = "floor"
FLOOR_MODULES = {"config", "codes", "artifacts", "fileio", "logutil", "registry", "study"}

# Folder (a subpackage, or a top-level module above the floor) -> the folders its modules may import; every
# folder may import its own modules and the floor. Top to bottom: cli, recompute, jobcontext, stages, reporting, guard,
# training, analysis, tasks, evaluation, data, provenance, cluster, models, the floor. A new dependency is
# a new entry here, and only ever downward (test_allowed_imports_table_is_a_dag).
ALLOWED_IMPORTS: dict[str, set[str]] = {
    "cli": {"recompute", "provenance", "cluster"},
    "recompute": {"stages", "analysis", "provenance"},  # audit --recompute re-runs cheap jobs' stages
    "jobcontext": {"provenance"},  # the job context of every workflow script
    "stages": {"reporting", "guard", "training", "analysis", "tasks", "evaluation", "data", "provenance", "models"},
    "reporting": {"guard", "analysis"},
    "guard": {"training", "analysis", "tasks", "evaluation", "data"},
    "training": {"analysis", "tasks", "data", "models", "provenance"},
    "analysis": {"tasks", "data", "models"},  # models: where a batch goes (models.placement.input_device)
    "tasks": {"evaluation", "data", "models"},
    "evaluation": set(),
    "data": set(),
    "provenance": {"models"},
    "cluster": {"training", "data", "models"},  # training.sizing: steps of a training job; data.counting
    "models": set(),
    FLOOR: set(),
}


def folder_of(module: str) -> str:
    """tunetrace.x.y -> x (a subpackage); tunetrace.m -> m, or the floor for a ground-floor module."""
    parts = module.split(".")
    if len(parts) > 2:
        return parts[1]
    name = parts[1] if len(parts) == 2 else ""
    return FLOOR if name in FLOOR_MODULES or name == "" else name


def outside_table(edges: list[tuple[str, str, int]], table: dict[str, set[str]]) -> list[str]:
    """Each import from one folder into another that the table does not allow, as 'module:line -> target'."""
    bad = []
    for module, target, line in edges:
        source, dest = folder_of(module), folder_of(target)
        if source != dest and dest != FLOOR and dest not in table.get(source, set()):
            bad.append(f"{module}:{line} -> {target} ({source} may import {sorted(table.get(source, set()))})")
    return bad


def test_table_check_reports_an_upward_import():
    """The checker itself: an import the table does not list is reported with its line; allowed ones are not."""
    edges = [
        ("tunetrace.data.readers", "tunetrace.config", 3),
        ("tunetrace.tasks.x", "tunetrace.data.readers", 4),
        ("tunetrace.data.readers", "tunetrace.tasks.dispatch", 9),
        ("tunetrace.config", "tunetrace.guard.y", 5),
    ]
    bad = outside_table(edges, ALLOWED_IMPORTS)
    assert [b.split(" ")[0] for b in bad] == ["tunetrace.data.readers:9", "tunetrace.config:5"]


def test_allowed_imports_table_is_a_dag():
    """The table is acyclic (no folder reaches itself through it), names only known folders, and covers every
    folder of the package: each subpackage and each top-level module that is not on the floor."""
    assert cycles(ALLOWED_IMPORTS) == []
    assert set().union(*ALLOWED_IMPORTS.values()) <= set(ALLOWED_IMPORTS)
    folders = {folder_of(m) for m in package_modules()}
    assert folders == set(ALLOWED_IMPORTS), (
        f"folders not in the table: {folders - set(ALLOWED_IMPORTS)}; "
        f"entries of no folder: {set(ALLOWED_IMPORTS) - folders}"
    )


def test_every_import_goes_down_the_table():
    """Every package import (in functions and under TYPE_CHECKING too) goes from a folder to one the table lets
    it import, or to the floor; the floor imports only the floor."""
    edges, _ = import_edges()
    bad = outside_table(edges, ALLOWED_IMPORTS)
    assert not bad, "imports the allowed-imports table does not allow:\n" + "\n".join(bad)


def test_subpackages_have_no_import_cycles():
    """The folder-level graph of the actual imports has no cycle (type-only imports included)."""
    edges, _ = import_edges()
    graph: dict[str, set[str]] = {}
    for module, target, _ in edges:
        graph.setdefault(folder_of(module), set())
        graph.setdefault(folder_of(target), set())
        if folder_of(module) != folder_of(target):
            graph[folder_of(module)].add(folder_of(target))
    assert cycles(graph) == []


# ---------------------------------------------------------------- (b) torch-free entry points

HEAVY = {"torch", "transformers", "peft"}


def run_fresh(code: str) -> dict:
    """Run `code` in a fresh interpreter (the package on its path, the repo as cwd); it must print one JSON object
    last. Returns that object, with "heavy": the torch, transformers or peft top-level packages left imported."""
    code += "\nimport json as _json, sys as _sys\nprint(_json.dumps({**result, 'modules': sorted(_sys.modules)}))\n"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(PKG_ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    return {**out, "heavy": sorted({m.split(".")[0] for m in out["modules"]} & HEAVY)}


def test_config_registry_and_codehash_import_no_torch():
    """Reading and validating a config, checking the model name, the registry's facts and the code hashes
    (what the DAG build needs) leave torch, transformers and peft unimported, in a fresh interpreter."""
    out = run_fresh(
        "import tunetrace.config, tunetrace.registry as r, tunetrace.provenance.codehash as c\n"
        "import tunetrace.models.names as n\n"
        "n.check_model_name('embedded:all-MiniLM-L6-v2')\n"
        "[(r.entry(n), r.primary_metric(n, None)) for n in r.task_type_names()]\n"
        "tunetrace.config.load_schema()\n"
        f"c.closure({str(PKG_ROOT)!r}, ['tunetrace.stages.evaluate'])\n"
        "result = {}\n"
    )
    assert {"tunetrace.registry", "tunetrace.provenance.codehash"} <= set(out["modules"])
    assert not out["heavy"], f"imported: {out['heavy']}"


# Workflow scripts that run no model: their module-level imports must stay torch-free (each such job then starts
# in about 0.5 s instead of 2; bench/bench_overhead.py's import table measures it).
MODEL_FREE_SCRIPTS = [
    "prepare_data",
    "evaluate_run",
    "evaluate_gate",
    "compute_drift",
    "plot_drift",
    "plot_training_curves",
    "compare_runs",
    "summarize_lineage",
]


@pytest.mark.parametrize("script", MODEL_FREE_SCRIPTS)
def test_model_free_workflow_scripts_import_no_torch(script):
    tree = ast.parse((REPO / "workflow_scripts" / f"{script}.py").read_text())
    imports = "\n".join(ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom))
    assert "tunetrace" in imports
    heavy = run_fresh(imports + "\nresult = {}\n")["heavy"]
    assert not heavy, f"workflow_scripts/{script}.py imports {heavy} (import it inside the function that needs it)"


def test_scoring_a_classification_run_imports_no_torch(tmp_path):
    """evaluate_run's job scores the outputs its training job wrote: its imports, the sequence_classification
    type and a real score_run (outputs file -> metrics.json) leave torch, transformers and peft unimported,
    so the job costs a pandas start-up, not a torch one (bench/bench_overhead.py measures the difference)."""
    result = run_fresh(
        "import numpy as np, pandas as pd\n"
        "from tunetrace import artifacts as A\n"
        "from tunetrace.config import EvalSpec, MethodSpec, TaskSpec, load_config\n"
        "from tunetrace.stages.evaluate import score_run\n"
        "from tunetrace.tasks.outputs import write_outputs\n"
        "from tunetrace.tasks.base import ModelOutputs\n"
        "import tunetrace.stages.prepare\n"
        "config = load_config('config/config.yaml')\n"
        "name, raw = next(iter(config['tasks'].items()))\n"
        "task = TaskSpec.from_dict(name, raw)\n"
        "method, raw_method = next(iter(config['methods'].items()))\n"
        "frame = pd.DataFrame({A.COL_ID: [f'e{i}' for i in range(8)], A.COL_TEXT: ['x'] * 8,\n"
        "                      A.COL_LABEL: [0, 1] * 4, A.COL_LABEL_NAME: [task.label_names[i] for i in [0, 1] * 4]})\n"
        f"data = {str(tmp_path / 'data')!r}\n"
        "import os; os.makedirs(data, exist_ok=True)\n"
        "frame.to_parquet(os.path.join(data, 'train.parquet'))\n"
        "frame.to_parquet(os.path.join(data, 'eval.parquet'))\n"
        "logits = [np.array([2.0, -1.0]) if i % 3 else np.array([-1.0, 2.0]) for i in range(8)]\n"
        f"outputs = {str(tmp_path / 'eval_outputs.parquet')!r}\n"
        "write_outputs(ModelOutputs(pd.DataFrame({A.COL_ID: frame[A.COL_ID], 'logits': logits}),\n"
        "                           {'truncated': 0}), outputs)\n"
        "metrics = score_run(task, MethodSpec.from_dict(method, raw_method),\n"
        "                    EvalSpec.from_dict({'bootstrap_samples': 50}), 0, data, outputs,\n"
        f"                    {str(tmp_path / 'eval')!r})\n"
        "result = {'accuracy': metrics['accuracy']}\n"
    )
    # rows 0, 3, 6 get class 1 (labels 0, 1, 0): right on row 3 only; the other five get class 0 (right on 2, 4)
    assert result["accuracy"] == 3 / 8
    assert (tmp_path / "eval" / "metrics.json").is_file()
    assert not result["heavy"], f"imported: {result['heavy']}"


# ---------------------------------------------------------------- (c) task type names only under tasks/


def _task_type_names() -> set[str]:
    from tunetrace.registry import task_type_names

    return set(task_type_names())


# Known string constants equal to a task type name outside tasks/, by (module, enclosing class or
# function). Empty: defaults come from the schema, dispatch from the registry.
ALLOWED: dict[tuple[str, str], str] = {}  # (module, scope) -> literal; keep it empty


def _scoped_constants(tree: ast.AST) -> list[tuple[str, str, int]]:
    """(string value, outermost enclosing class/function name or "<module>", line) of each string constant."""
    found = []

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if scope == "<module>" and isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = child.name
            if isinstance(child, ast.Constant) and isinstance(child.value, str):
                found.append((child.value, inner, child.lineno))
            visit(child, inner)

    visit(tree, "<module>")
    return found


def task_type_literals() -> list[tuple[str, str, str, int]]:
    """(module, scope, name, line) of every string constant naming a task type outside tunetrace/tasks/ and the
    registry, in the package and in the workflow scripts."""
    names = _task_type_names()
    files = [p for p in package_modules().values() if TASKS_DIR not in p.parents and p != REGISTRY_FILE]
    files += sorted((REPO / "workflow_scripts").glob("*.py"))
    hits = []
    for path in files:
        module = module_name(path) if PACKAGE_DIR in path.parents else path.relative_to(REPO).as_posix()
        for value, scope, line in _scoped_constants(ast.parse(path.read_text(encoding="utf-8"))):
            if value in names:
                hits.append((module, scope, value, line))
    return hits


def test_task_type_names_appear_only_under_tasks():
    """No module outside tunetrace/tasks/ (nor a workflow script) spells a task type's name: generic code
    asks the task type (registry) instead of branching on its name."""
    hits = task_type_literals()
    bad = [
        f"{m} ({scope}) line {line}: {value!r}" for m, scope, value, line in hits if ALLOWED.get((m, scope)) != value
    ]
    assert not bad, "task type names outside tunetrace/tasks/:\n" + "\n".join(bad)
    stale = set(ALLOWED) - {(m, scope) for m, scope, _, _ in hits}
    assert not stale, f"ALLOWED entries that match nothing any more (remove them): {sorted(stale)}"


def test_literal_scan_sees_a_comparison():
    """The scan reports a name compared as a string (in a nested function, inside a tuple)."""
    source = "def f(task):\n    def g():\n        return task.type in ('x', 'causal_lm')\n    return g\n"
    found = [(v, s) for v, s, _ in _scoped_constants(ast.parse(source)) if v in _task_type_names()]
    assert found == [("causal_lm", "f")]


# ---------------------------------------------------------------- (d) every subpackage is a documented package


def test_every_subpackage_has_a_docstring_init():
    """Each directory under pkg/tunetrace holding Python has an __init__.py whose docstring says what is
    in it, and that imports nothing (so importing a submodule runs no more than its own imports, which is
    why the cycle test needs no edges from a module to the packages above it).

    Directories without Python (schema/: YAML only) are data, not subpackages."""
    dirs = sorted({p.parent for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts})
    assert PACKAGE_DIR in dirs and TASKS_DIR in dirs
    problems = []
    for directory in dirs:
        init = directory / "__init__.py"
        if not init.is_file():
            problems.append(f"{directory.relative_to(REPO)}: no __init__.py")
            continue
        tree = ast.parse(init.read_text(encoding="utf-8"))
        doc = ast.get_docstring(tree)
        if not doc or not doc.strip():
            problems.append(f"{init.relative_to(REPO)}: no docstring")
        imports = all_imports(tree)
        if imports:
            problems.append(f"{init.relative_to(REPO)}: line {imports[0].lineno}: imports in a package __init__")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- (e) workflow scripts: job context plus one stage call

SCRIPTS = sorted((REPO / "workflow_scripts").glob("*.py"))


def stage_calls(source: str) -> list[str]:
    """Problems of a workflow script against its shape: a docstring, imports and constants, then one
    `with job(snakemake...) as j:` whose body is one call of a function imported from a `tunetrace.stages` module.
    Returns the problems (empty: the script has that shape)."""
    tree = ast.parse(source)
    stage_names = {
        alias.asname or alias.name: node.module
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tunetrace.stages.")
        for alias in node.names
    }
    job_names = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == "tunetrace.jobcontext"
        for alias in node.names
        if alias.name == "job"
    }
    withs = [node for node in tree.body if isinstance(node, ast.With)]
    others = [
        node
        for node in tree.body
        if not isinstance(node, (ast.With, ast.Import, ast.ImportFrom, ast.Assign))
        and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
    ]
    problems = [f"line {node.lineno}: a top-level statement besides the job context" for node in others]
    if len(withs) != 1:
        return [*problems, f"{len(withs)} `with` statements at top level (one: `with job(snakemake) as j:`)"]
    (item, *more), body = withs[0].items, withs[0].body
    call = item.context_expr
    if more or not (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Name)
        and call.func.id in job_names
        and call.args
        and isinstance(call.args[0], ast.Name)
        and call.args[0].id == "snakemake"
    ):
        problems.append("the `with` is not `job(snakemake, ...)` from tunetrace.jobcontext")
    calls = [
        n
        for n in ast.walk(withs[0])
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in stage_names
    ]
    if len(body) != 1 or len(calls) != 1 or not (isinstance(body[0], ast.Expr) and body[0].value is calls[0]):
        problems.append(
            f"the job's body is not one call into tunetrace.stages ({len(calls)} stage calls, {len(body)} statements)"
        )
    return problems


def test_script_shape_check_finds_deviations():
    """The shape check itself: a script with work besides its stage call, or without the job context, fails."""
    good = (
        "from tunetrace.jobcontext import job\nfrom tunetrace.stages.x import f\n\n"
        "with job(snakemake) as j:\n    f(j.input.a)\n"
    )
    assert stage_calls(good) == []
    assert stage_calls(good + "print(1)\n")
    assert stage_calls(good.replace("    f(j.input.a)", "    f(1)\n    f(2)"))
    assert stage_calls(good.replace("job(snakemake)", "open(snakemake)"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_workflow_script_is_the_job_context_and_one_stage_call(script):
    """Each workflow script runs inside the job context (log, lineage, threads) and calls one stages function."""
    problems = stage_calls(script.read_text())
    assert not problems, f"workflow_scripts/{script.name}: " + "; ".join(problems)


def test_each_rule_has_its_own_stage_module():
    """Workflow scripts and stages modules pair one to one: each script imports its function from a different
    tunetrace.stages module, and every stages module serves a script."""
    used = [
        node.module
        for p in SCRIPTS
        for node in ast.parse(p.read_text()).body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tunetrace.stages.")
    ]
    assert len(used) == len(set(used)) == len(SCRIPTS), used
    modules = {m for m in package_modules() if m.startswith("tunetrace.stages.")}
    assert set(used) == modules, f"stages modules no script calls: {sorted(modules - set(used))}"
