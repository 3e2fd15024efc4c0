"""`tunetrace audit --recompute`: derive again every number that is cheap to derive from its inputs, and name each
one that differs from the file on disk (file and JSON path).

The hash audit (`provenance.audit`) proves a file is the one its record describes; a hand-edited file whose
record was rewritten to match passes it. Recomputing closes that gap for the numbers that matter: a run's
evaluation is scored again from the raw outputs its training job wrote (the task type's `score`: metrics,
group rates, predictions), a drift table from the stored representations (`analysis.similarity`), and the
comparison is rebuilt from its inputs (`reporting.comparison`). Each job is re-run, from the params and inputs
its lineage record names, into a temporary directory, and the outputs are compared field by field. Rules that
must load a model again (baselines, training, validation, merge checks) are not recomputed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from tunetrace.provenance.lineage import read_record

# relative and absolute tolerance for floats: recomputing on another machine may differ in the last bits
REL_TOL = 1e-6
ABS_TOL = 1e-9
# when a document was written differs on every recomputation, and is no number derived from the inputs
VOLATILE_KEYS = frozenset({"generated_at"})
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?")


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """One recomputed value that differs from the file on disk."""

    path: str  # the file
    field: str  # JSON path ($.accuracy), or a table's column and row
    stored: Any
    recomputed: Any
    rule: str

    def message(self) -> str:
        return (
            f"{self.path} {self.field}: stored {self.stored!r} != recomputed {self.recomputed!r} "
            f"(rule {self.rule}; regenerate it with: snakemake --forcerun {self.path})"
        )


def _same_number(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)
    return a == b


def diff_values(stored: Any, recomputed: Any, where: str = "$") -> Iterator[tuple[str, Any, Any]]:
    """(JSON path, stored, recomputed) for every leaf that differs; floats within tolerance are equal."""
    if isinstance(stored, Mapping) and isinstance(recomputed, Mapping):
        for key in sorted((set(stored) | set(recomputed)) - VOLATILE_KEYS, key=str):
            yield from diff_values(stored.get(key, "<absent>"), recomputed.get(key, "<absent>"), f"{where}.{key}")
    elif isinstance(stored, list) and isinstance(recomputed, list) and len(stored) == len(recomputed):
        for i, (a, b) in enumerate(zip(stored, recomputed, strict=True)):
            yield from diff_values(a, b, f"{where}[{i}]")
    elif not _same_number(stored, recomputed):
        yield where, stored, recomputed


def diff_json(path: str, fresh: Path, rule: str) -> list[Mismatch]:
    stored = json.loads(Path(path).read_text())
    return [Mismatch(path, field, a, b, rule) for field, a, b in diff_values(stored, json.loads(fresh.read_text()))]


def diff_table(path: str, fresh: Path, rule: str) -> list[Mismatch]:
    """A parquet table against its recomputation, cell by cell (`column[row]`)."""
    import pandas as pd

    stored, again = pd.read_parquet(path), pd.read_parquet(fresh)
    if list(stored.columns) != list(again.columns) or len(stored) != len(again):
        return [
            Mismatch(
                path, "$shape", f"{list(stored.columns)} x {len(stored)}", f"{list(again.columns)} x {len(again)}", rule
            )
        ]
    found = []
    for column in stored.columns:
        for row, (a, b) in enumerate(zip(stored[column].tolist(), again[column].tolist(), strict=True)):
            a, b = _plain(a), _plain(b)
            if not _same_number(a, b):
                found.append(Mismatch(path, f"{column}[{row}]", a, b, rule))
    return found


def diff_text(path: str, fresh: Path, rule: str) -> list[Mismatch]:
    stored, again = (TIMESTAMP.sub("<time>", text).splitlines() for text in (Path(path).read_text(), fresh.read_text()))
    for line, (a, b) in enumerate(zip(stored, again, strict=False), start=1):
        if a != b:
            return [Mismatch(path, f"line {line}", a, b, rule)]
    if len(stored) != len(again):
        return [Mismatch(path, "$lines", len(stored), len(again), rule)]
    return []


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python values, so they compare and print plainly."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def diff_file(path: str, fresh: Path, rule: str) -> list[Mismatch]:
    if path.endswith(".json"):
        return diff_json(path, fresh, rule)
    if path.endswith(".parquet"):
        return diff_table(path, fresh, rule)
    if path.endswith((".md", ".txt")):
        return diff_text(path, fresh, rule)
    return []  # plots: not compared


def _inputs(record: Mapping[str, Any]) -> dict[str, list[str]]:
    """Input name -> paths, from a record (named lists appear as `name[i]`)."""
    named: dict[str, list[str]] = {}
    for entry in record["inputs"]:
        named.setdefault(entry["name"].split("[")[0], []).append(entry["path"])
    return named


def _evaluate_run(record: Mapping[str, Any], out: Path) -> dict[str, Path]:
    from tunetrace import artifacts as A
    from tunetrace.config import EvalSpec, MethodSpec, TaskSpec
    from tunetrace.stages.evaluate import score_run

    wild, params, inputs = record["wildcards"], record["params"], _inputs(record)
    score_run(
        TaskSpec.from_dict(wild["task"], params["task"]),
        MethodSpec.from_dict(wild["method"], params["method"]),
        EvalSpec.from_dict(params["evaluation"]),
        seed=int(wild["seed"]),
        data_dir=Path(inputs["eval"][0]).parent,
        outputs_path=inputs["outputs"][0],
        out_dir=out,
    )
    return {"metrics": out / A.METRICS, "predictions": out / A.PREDICTIONS, "report": out / A.EVAL_REPORT}


def _compare_runs(record: Mapping[str, Any], out: Path) -> dict[str, Path]:
    from tunetrace.stages.compare import compare_runs

    paths = {"comparison": out / "comparison.json", "markdown": out / "comparison.md"}
    compare_runs(record["params"]["study"], _inputs(record), out_json=paths["comparison"], out_md=paths["markdown"])
    return paths


def _compute_drift(record: Mapping[str, Any], out: Path) -> dict[str, Path]:
    from tunetrace.analysis.steps import RepresentationSpec
    from tunetrace.stages.drift import compute_drift

    wild, inputs = record["wildcards"], _inputs(record)
    paths = {"table": out / "drift.parquet", "heatmap": out / "heatmap.png"}
    compute_drift(
        base_dir=inputs["base"][0],
        run_dir=inputs["reps"][0],
        spec=RepresentationSpec.from_dict(record["params"]["representations"]),
        identity={"method": wild["method"], "task": wild["task"], "seed": int(wild["seed"])},
        out_table=paths["table"],
        out_heatmap=paths["heatmap"],
    )
    return paths


# rule -> re-run of its job from the record into a directory: {output name: recomputed file}
RECOMPUTERS: dict[str, Callable[[Mapping[str, Any], Path], dict[str, Path]]] = {
    "evaluate_run": _evaluate_run,
    "compare_runs": _compare_runs,
    "compute_drift": _compute_drift,
}


def _job_outputs(path: str, record: Mapping[str, Any]) -> dict[str, str]:
    """Output name -> path of every output of the job that wrote `path` (itself and its siblings)."""
    outputs = {record.get("output_name", "output_0"): path}
    for sibling in record.get("siblings", []):
        other = read_record(sibling["path"])
        if other is not None:
            outputs[other.get("output_name", sibling["path"])] = sibling["path"]
    return outputs


def recompute_job(path: str, record: Mapping[str, Any]) -> list[Mismatch]:
    """Re-run the job that wrote `path` into a temporary directory and diff each of its outputs."""
    outputs = _job_outputs(path, record)
    with tempfile.TemporaryDirectory(prefix="tunetrace-recompute-") as tmp:
        try:
            fresh = RECOMPUTERS[record["rule"]](record, Path(tmp))
        except Exception as err:  # an input gone or unreadable: the hash audit names it; say why here
            return [Mismatch(path, "$", "<stored>", f"not recomputable: {type(err).__name__}: {err}", record["rule"])]
        found = []
        for name, stored in sorted(outputs.items()):
            if name in fresh and Path(stored).is_file():
                found += diff_file(stored, fresh[name], record["rule"])
        return found


def recompute(paths: list[str]) -> dict[str, Any]:
    """Recompute every job among the audited artifacts `paths` that has a recomputer (each job once)."""
    done: set[str] = set()
    checked: list[str] = []
    mismatches: list[Mismatch] = []
    for path in sorted(paths):
        record = read_record(path)
        if record is None or record.get("rule") not in RECOMPUTERS or path in done:
            continue
        outputs = _job_outputs(path, record)
        done.update(outputs.values())
        checked.append(path)
        mismatches += recompute_job(path, record)
    return {"checked": checked, "mismatches": [dataclasses.asdict(m) | {"message": m.message()} for m in mismatches]}


def render_recompute(result: Mapping[str, Any]) -> str:
    lines = [
        f"recomputed {len(result['checked'])} job(s) from their inputs: "
        + ("all numbers agree" if not result["mismatches"] else f"{len(result['mismatches'])} mismatch(es)")
    ]
    lines += [f"  MISMATCH {m['message']}" for m in result["mismatches"]]
    return "\n".join(lines)
