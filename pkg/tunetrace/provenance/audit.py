"""`tunetrace audit`: walk lineage records back to raw data and base model, re-hash, report problems.

Statuses of a node: `ok`; `missing` (the file or directory, or a file inside it, is gone);
`modified` (bytes differ from the sha256 recorded when it was written, or a raw source differs from
what its consumer recorded); `stale` (an input was re-written after this artifact was made: its
lineage id is not the one this artifact recorded); `broken` (chain broken: an input's lineage record was
rewritten after this artifact was made, its bytes are not the ones this artifact's record holds for it);
`unrecorded` (a workflow artifact without record). An input entry written before records were chained (no
`record_sha256`) is noted as `unchained`, not a problem.

`audit --recompute` (`tunetrace.recompute`) also derives every cheap number again from its inputs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tunetrace.models.names import resolve_model_path
from tunetrace.provenance.integrity import OPTIONS_HINT, file_differences, repair_command
from tunetrace.provenance.lineage import hash_artifact, read_record, record_hash

_RANK = {"ok": 0, "stale": 1, "unrecorded": 2, "broken": 3, "modified": 3, "missing": 4}


@dataclasses.dataclass
class Node:
    """One artifact, raw source or base model in the lineage graph."""

    path: str
    kind: str  # artifact | source | model
    rule: str | None = None
    lineage_id: str | None = None
    sha256: str | None = None
    finished: str | None = None
    status: str = "ok"
    problems: list[str] = dataclasses.field(default_factory=list)
    inputs: list[str] = dataclasses.field(default_factory=list)
    siblings: list[str] = dataclasses.field(default_factory=list)
    sources: list[str] = dataclasses.field(default_factory=list)
    unchained: list[str] = dataclasses.field(default_factory=list)  # inputs recorded without a record hash

    def flag(self, status: str, message: str) -> None:
        self.problems.append(message)
        if _RANK[status] > _RANK[self.status]:
            self.status = status


def compare_files(node: Node, recorded: list[Mapping[str, Any]], root: str) -> None:
    """Re-hash an artifact on disk and flag every file that is missing, changed or unexpected."""
    for status, message in file_differences(recorded, root):
        node.flag(status, message)


class Auditor:
    """Walks the graph once per path, re-hashing each artifact at most once."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self._hashes: dict[str, str | None] = {}

    def current_hash(self, path: str) -> str | None:
        if path not in self._hashes:
            self._hashes[path] = hash_artifact(path)["sha256"] if Path(path).exists() else None
        return self._hashes[path]

    def visit(self, path: str) -> Node:
        if path in self.nodes:
            return self.nodes[path]
        record = read_record(path)
        if record is None:
            node = self.nodes[path] = Node(path, "source")
            if not Path(path).exists():
                node.flag("missing", "not found on disk")
            return node
        node = self.nodes[path] = Node(
            path,
            "artifact",
            rule=record["rule"],
            lineage_id=record["id"],
            sha256=record["artifact"]["sha256"],
            finished=record.get("finished"),
        )
        compare_files(node, record["artifact"]["files"], path)
        for sibling in record.get("siblings", []):
            node.siblings.append(sibling["path"])
            self.visit_sibling(sibling["path"])
        for source in record.get("sources", []):
            self.visit_model(node, source)
        for entry in record["inputs"]:
            node.inputs.append(entry["path"])
            self.check_input(node, entry, self.visit(entry["path"]))
        return node

    def visit_sibling(self, path: str) -> None:
        """Another output of the same job: verify its files (its inputs are this node's inputs)."""
        if path in self.nodes:
            return
        record = read_record(path)
        node = self.nodes[path] = Node(
            path, "artifact", rule=record and record["rule"], lineage_id=record and record["id"]
        )
        if record is None:
            node.flag("missing" if not Path(path).exists() else "unrecorded", "no lineage record")
        else:
            compare_files(node, record["artifact"]["files"], path)

    def visit_model(self, consumer: Node, source: Mapping[str, Any]) -> None:
        path = source.get("path")
        if not path:  # a hub model: nothing on disk to verify
            return
        consumer.sources.append(path)
        if path not in self.nodes:
            node = self.nodes[path] = Node(path, "model", rule=None, sha256=source.get("sha256"))
            try:  # resolved on this machine: the record names the model, not where it was installed
                where = resolve_model_path(source["ref"]) if source.get("ref") else path
            except ValueError as err:
                node.flag("missing", str(err))
                return
            compare_files(node, source["files"], where)

    def check_input(self, consumer: Node, entry: Mapping[str, Any], child: Node) -> None:
        """Edge check: is the input still the one this artifact was made from?"""
        if child.kind == "source" and entry.get("lineage_id"):  # a workflow output whose record is gone
            child.kind = "artifact"
            if child.status == "ok":
                child.flag("unrecorded", f"its lineage record is gone ({consumer.path} was made from it)")
        if child.status in ("missing", "unrecorded"):
            return  # the child names it
        if child.kind == "source":
            now = child.sha256 = self.current_hash(entry["path"])
            if now != entry["sha256"]:
                child.flag("modified", f"sha256 {str(now)[:12]} != {entry['sha256'][:12]} recorded by {consumer.path}")
            return
        if entry.get("lineage_id") and child.lineage_id != entry["lineage_id"]:
            consumer.flag(
                "stale",
                f"input {entry['path']} was re-written after this artifact "
                f"(lineage id {entry['lineage_id']} -> {child.lineage_id})",
            )
            return
        self.check_chain(consumer, entry, child)

    def check_chain(self, consumer: Node, entry: Mapping[str, Any], child: Node) -> None:
        """The input's record must be, byte for byte, the one that existed when the consumer was made."""
        if not entry.get("lineage_id"):
            return
        recorded = entry.get("record_sha256")
        if recorded is None:  # a record written before chaining: nothing to compare, not a failure
            consumer.unchained.append(entry["path"])
            return
        now = record_hash(entry["path"])
        if now != recorded:
            child.flag(
                "broken",
                f"chain broken: {entry['path']}'s record changed after {consumer.path} was made "
                f"(record sha256 {str(now)[:12]} != {recorded[:12]} recorded by {consumer.path}; "
                f"a record is never rewritten by hand: regenerate {entry['path']})",
            )


def audit(artifact: str) -> dict[str, Any]:
    """Audit the lineage of one artifact; the result is JSON-ready."""
    auditor = Auditor()
    artifact = os.path.normpath(artifact)
    root = auditor.visit(artifact)
    if root.kind == "source" and root.status == "ok":
        root.flag("unrecorded", "no lineage record beside it (expected <artifact>.lineage.json)")
    problems = [
        {"path": n.path, "status": n.status, "problems": n.problems} for n in auditor.nodes.values() if n.status != "ok"
    ]
    unchained = sorted({p for n in auditor.nodes.values() for p in n.unchained})
    return {
        "root": str(artifact),
        "ok": not problems,
        "problems": problems,
        "unchained": unchained,
        "nodes": {p: dataclasses.asdict(n) for p, n in auditor.nodes.items()},
    }


def _label(node: Mapping[str, Any]) -> str:
    rule = f" [{node['rule']}]" if node.get("rule") else f" ({node['kind']})"
    status = node["status"].upper() if node["status"] != "ok" else "ok"
    detail = f": {'; '.join(node['problems'])}" if node["problems"] else ""
    return f"{node['path']}{rule}  {status}{detail}"


def render_tree(result: Mapping[str, Any]) -> str:
    """A readable tree: inputs below their consumer, same-job outputs marked `=`, repeats not expanded."""
    nodes, lines, seen = result["nodes"], [], set()

    def walk(path: str, prefix: str, tee: str, mark: str = "") -> None:
        node = nodes[path]
        again = path in seen and (node["inputs"] or node["siblings"])
        lines.append(f"{prefix}{tee}{mark}{_label(node)}{'  (see above)' if again else ''}")
        if path in seen:
            return
        seen.add(path)
        children = (
            [(p, "= ") for p in node["siblings"]]
            + [(p, "") for p in node["sources"]]
            + [(p, "") for p in node["inputs"]]
        )
        child_prefix = prefix + ("" if not tee else ("    " if tee == "└── " else "│   "))
        for i, (child, child_mark) in enumerate(children):
            walk(child, child_prefix, "└── " if i == len(children) - 1 else "├── ", child_mark)

    walk(result["root"], "", "")
    count = len(result["problems"])
    lines.append("")
    lines.append(f"{len(nodes)} nodes, {count} with problems" if count else f"{len(nodes)} nodes, all ok")
    if result.get("unchained"):
        lines.append(
            f"{len(result['unchained'])} input(s) unchained (recorded before record hashes were kept; "
            f"not a failure): {', '.join(result['unchained'])}"
        )
    return "\n".join(lines)


def render_html(result: Mapping[str, Any], code: Mapping[str, Any] | None = None) -> str:
    """A self-contained HTML page: audit verdict, code version and one table row per lineage node."""
    from html import escape

    rows = []
    for node in result["nodes"].values():
        cells = [
            node["path"],
            node.get("rule") or node["kind"],
            node["status"],
            node.get("lineage_id") or "",
            (node.get("sha256") or "")[:16],
            node.get("finished") or "",
            "; ".join(node["problems"]),
        ]
        rows.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
    verdict = "all nodes verified" if result["ok"] else f"{len(result['problems'])} node(s) with problems"
    code_lines = "".join(
        f"<li>{escape(k)}: {escape(str(v))}</li>" for k, v in sorted((code or {}).items()) if k != "pkg_files"
    )
    columns = ("artifact", "rule", "status", "lineage id", "sha256", "written", "problems")
    head = "".join(f"<th>{h}</th>" for h in columns)
    return (
        f"<html><head><meta charset='utf-8'><title>tunetrace lineage</title></head><body>"
        f"<h2>Lineage of {escape(result['root'])}</h2><p>Audit: {escape(verdict)} "
        f"({len(result['nodes'])} nodes re-hashed).</p><h3>Code version</h3><ul>{code_lines}</ul>"
        f"<table border='1' cellpadding='3'><tr>{head}</tr>{''.join(rows)}</table></body></html>\n"
    )


def _job_inputs(nodes: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """path -> inputs of the job that wrote it (an output seen only as another's sibling shares its inputs)."""
    inputs = {path: list(node["inputs"]) for path, node in nodes.items()}
    for node in nodes.values():
        for sibling in node["siblings"]:
            inputs[sibling] = inputs.get(sibling) or list(node["inputs"])
    return inputs


def _upstream(path: str, inputs: Mapping[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(inputs.get(path, []))
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += inputs.get(current, [])
    return seen


def _regenerated_anyway(
    path: str, forced: set[str], inputs: Mapping[str, list[str]], siblings: Mapping[str, set[str]]
) -> bool:
    """True when rerunning another forced output reruns this one too (downstream of it, or the same job's
    output that sorts first)."""
    others = forced - {path}
    return any(other < path for other in siblings.get(path, set()) & others) or bool(_upstream(path, inputs) & others)


def repair_plan(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What repairs an audited tree, one entry per problem: `forcerun` (regenerate the output, and with it
    everything downstream; `redundant` when another forced output already reruns it), or `restore` for a
    raw source or the base model, which no rule can rewrite."""
    nodes = result["nodes"]
    inputs = _job_inputs(nodes)
    consumers: dict[str, list[str]] = {}
    for path, ins in inputs.items():
        for item in ins:
            consumers.setdefault(item, []).append(path)
    plan = []
    for problem in result["problems"]:
        node = nodes[problem["path"]]
        entry = {"path": node["path"], "rule": node.get("rule"), "status": node["status"], "problems": node["problems"]}
        if node["kind"] == "artifact" or node["status"] == "unrecorded":
            entry["action"] = "forcerun"
        elif node["kind"] == "model":
            entry.update(
                action="restore",
                note="the base model's files differ from the ones the study used: reinstall or re-download it",
            )
        else:
            readers = sorted(consumers.get(node["path"], []))
            entry.update(
                action="restore",
                note="restore it; if the change is meant, rerun what reads it: " + repair_command(readers),
            )
        plan.append(entry)
    siblings: dict[str, set[str]] = {}
    for path, node in nodes.items():
        for other in node["siblings"]:
            siblings.setdefault(path, set()).add(other)
            siblings.setdefault(other, set()).add(path)
    forced = {e["path"] for e in plan if e["action"] == "forcerun"}
    # A missing output needs no forcing: any snakemake run rebuilds it (a job that failed on a tampered input
    # leaves its outputs, and their records, removed), so it reruns with the others whenever there are others.
    present = {e["path"] for e in plan if e["action"] == "forcerun" and e["status"] != "missing"}
    for entry in plan:
        entry["redundant"] = entry["action"] == "forcerun" and (
            _regenerated_anyway(entry["path"], forced, inputs, siblings)
            or (entry["status"] == "missing" and bool(present))
        )
    return plan


def repair_targets(plan: list[Mapping[str, Any]]) -> list[str]:
    """The outputs to pass to `snakemake --forcerun`, fewest first-in-the-pipeline ones that cover the plan."""
    return sorted(e["path"] for e in plan if e["action"] == "forcerun" and not e["redundant"])


def render_repairs(plan: list[Mapping[str, Any]], snakemake_args: list[str] | None = None) -> str:
    """The plan as text: one `snakemake --forcerun` line per output to regenerate, then what to restore."""
    if not plan:
        return "Nothing to repair."
    lines = [f"Outputs are never edited by hand (docs/lineage.md). To repair ({OPTIONS_HINT}):"]
    for entry in plan:
        if entry["action"] == "forcerun" and not entry["redundant"]:
            lines.append(
                f"  {repair_command([entry['path']], snakemake_args or [])}"
                f"    # {entry['rule'] or 'workflow output'}: {entry['status']}"
            )
    targets = repair_targets(plan)
    if len(targets) > 1:
        lines += ["or all at once:", f"  {repair_command(targets, snakemake_args or [])}"]
    covered = [e["path"] for e in plan if e["redundant"]]
    if covered:
        lines.append(f"(these rerun with them: {', '.join(covered)})")
    for entry in plan:
        if entry["action"] == "restore":
            lines.append(f"  {entry['path']} ({entry['status']}): {entry['note']}")
    return "\n".join(lines)
