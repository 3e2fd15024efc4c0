"""Integrity of workflow outputs before they are read: each one's bytes against the sha256 its lineage
record holds (written when its producer finished), and the command that regenerates one that differs.

Outputs are never edited by hand: a number that reaches results/comparison.json must be the one its
rule computed. Snakemake sees an edited file only as a newer input and reruns its readers, so the
readers check: the aggregating rules (compare_runs, validate_run, compute_drift, plot_drift) call
`check_inputs` before reading anything, `tunetrace status` marks such runs `modified`, and
`tunetrace audit --fix` lists the repairs of a whole tree (`provenance.audit.repair_plan`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tunetrace.provenance.lineage import hash_artifact, read_record, recording_enabled

log = logging.getLogger(__name__)
# how a user passes the study's own snakemake options (--configfile, --profile, ...) to a repair
OPTIONS_HINT = "add the options you run the study with, e.g. --configfile"


@dataclasses.dataclass(frozen=True)
class Problem:
    """A workflow output that is not what its producer wrote."""

    path: str
    status: str  # missing | modified | unrecorded
    detail: str
    rule: str | None = None

    def message(self) -> str:
        writer = f"rule {self.rule}" if self.rule else "the workflow"
        return (
            f"{self.path} (written by {writer}) is {self.status}: {self.detail}; regenerate it, and "
            f"everything that reads it, with: {repair_command([self.path])}"
        )


class TamperedInput(RuntimeError):
    """Inputs of a job differ from their lineage records; the job reads and writes nothing."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        lines = "\n  ".join(p.message() for p in self.problems)
        super().__init__(
            f"{len(self.problems)} input(s) differ from what their rules wrote (outputs are never "
            f"edited by hand; see docs/lineage.md); nothing was read or written:\n  {lines}\n"
            f"({OPTIONS_HINT}; `tunetrace audit results/comparison.json --fix` lists every repair)"
        )


def repair_command(paths: Iterable[str], snakemake_args: Sequence[str] = ()) -> str:
    """`snakemake --forcerun <outputs>`: reruns the jobs that write them, then every job downstream."""
    return shlex.join(["snakemake", *snakemake_args, "--forcerun", *paths])


def file_differences(
    recorded: Iterable[Mapping[str, Any]], root: str | os.PathLike, known: Mapping[str, Mapping[str, Any]] | None = None
) -> list[tuple[str, str]]:
    """(status, message) for each file of an artifact that is missing, changed or not in its record.

    `known` (recorded entries by relative name) lets files whose size and mtime still match keep their
    recorded hash, as lineage.hash_artifact does; without it every byte is hashed again.
    """
    if not Path(root).exists():
        return [("missing", "not found on disk")]
    current = {f["path"]: f for f in hash_artifact(root, known)["files"]}
    found = []
    for entry in recorded:
        name = entry["path"] or Path(root).name
        now = current.pop(entry["path"], None)
        if now is None:
            found.append(("missing", f"file {name} is missing"))
        elif now["sha256"] != entry["sha256"]:
            found.append(("modified", f"file {name}: sha256 {now['sha256'][:12]} != recorded {entry['sha256'][:12]}"))
    found += [("modified", f"unexpected file {name} (not in the record)") for name in sorted(current)]
    return found


def _same_place(recorded: str, path: str, workdir: Path) -> bool:
    return os.path.normpath(workdir / recorded) == os.path.normpath(workdir / path)


def verify_input(
    path: str, workdir: str | os.PathLike = ".", trust_unchanged: bool = False, require_record: bool = True
) -> Problem | None:
    """The one problem of a workflow output (None when its bytes are the ones its record holds).

    `trust_unchanged` skips re-hashing files whose size and mtime match the record (`tunetrace status`;
    a job about to read a file hashes it); `require_record` makes a missing record a problem: every
    workflow output gets one, so a file without it was not written by its rule, or its record was deleted.
    """
    where = Path(workdir) / path
    record = read_record(where)
    if record is None:
        if not require_record:
            return None
        if not where.exists():
            return Problem(path, "missing", "not found on disk")
        return Problem(path, "unrecorded", f"no lineage record {path}.lineage.json beside it")
    artifact = record["artifact"]
    if not _same_place(artifact["path"], path, Path(workdir)):
        return Problem(
            path, "modified", f"its lineage record describes {artifact['path']} (copied from there?)", record["rule"]
        )
    known = {f["path"]: f for f in artifact["files"]} if trust_unchanged else None
    found = file_differences(artifact["files"], where, known)
    if not found:
        return None
    status = "missing" if any(s == "missing" for s, _ in found) else "modified"
    return Problem(path, status, "; ".join(m for _, m in found), record["rule"])


def verify_inputs(
    paths: Iterable[str | os.PathLike],
    workdir: str | os.PathLike = ".",
    trust_unchanged: bool = False,
    require_record: bool = True,
) -> list[Problem]:
    """Every problem of the given workflow outputs (each path checked once, in order)."""
    unique = dict.fromkeys(str(p) for p in paths)
    found = (verify_input(p, workdir, trust_unchanged, require_record) for p in unique)
    return [problem for problem in found if problem is not None]


def check_inputs(paths: Iterable[str | os.PathLike]) -> None:
    """Adapter entry point: raise TamperedInput, before the job reads anything, when an input is not what
    its rule wrote. With lineage recording off (TUNETRACE_LINEAGE=0) there is nothing to check against."""
    if not recording_enabled():
        log.warning("integrity: inputs not verified (TUNETRACE_LINEAGE=0 writes no lineage records)")
        return
    problems = verify_inputs(paths)
    if problems:
        raise TamperedInput(problems)


def edited_final_outputs(paths: Iterable[str | os.PathLike], workdir: str | os.PathLike = ".") -> list[Problem]:
    """The final outputs (results/comparison.json, .md) whose bytes no longer match their records, checked when
    the DAG is built: size and mtime first, sha256 only for a file where either differs. An output without a
    record (not yet written, lineage off) is not a problem here."""
    present = [p for p in paths if (Path(workdir) / p).is_file()]
    return [
        problem
        for problem in verify_inputs(present, workdir, trust_unchanged=True, require_record=False)
        if problem.status == "modified"
    ]
