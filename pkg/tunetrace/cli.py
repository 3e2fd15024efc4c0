"""The `tunetrace` command: `audit` (lineage of an artifact), `status` (state of every run) and `doctor` (the
cluster against the study's requests). Each takes the study as snakemake does: --directory, --configfile."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence

from tunetrace.config import ConfigError, load_yaml
from tunetrace.provenance.audit import audit, render_repairs, render_tree, repair_plan, repair_targets
from tunetrace.provenance.status import (
    add_verdicts,
    comparison_state,
    parse_summary,
    render_table,
    render_verdicts,
    run_summary,
    run_table,
    tampered_outputs,
)
from tunetrace.study import add_study_options, load_study_config, study_from_args


def _extra(args: argparse.Namespace, snakefile: bool | None = None) -> list[str]:
    """Options meant for snakemake: the study's (--snakefile, --configfile), then everything after `--`."""
    return [*args.study.snakemake_args(snakefile), *args.snakemake_args]


def _audit(args: argparse.Namespace) -> int:
    os.chdir(args.study.directory)  # lineage records name paths relative to the study directory
    result = audit(args.artifact)
    if args.recompute:
        _recompute(result)
    plan = repair_plan(result) if args.fix or args.run else None
    if args.json:
        print(json.dumps({**result, "repair": plan} if plan is not None else result, indent=2, sort_keys=True))
    else:
        print(render_tree(result))
        if args.recompute:
            from tunetrace.recompute import render_recompute

            print("\n" + render_recompute(result["recompute"]))
        if plan is not None:
            print("\n" + render_repairs(plan, _extra(args)))
    if not args.run or result["ok"]:
        return 0 if result["ok"] else 1
    return _run_repair(args, plan)


def _recompute(result: dict) -> None:
    """Derive the cheap numbers again (`tunetrace.recompute`); a mismatch marks its file `modified`, so --fix and
    --run repair it like any other tampered output."""
    from tunetrace.recompute import recompute

    found = result["recompute"] = recompute([p for p, n in result["nodes"].items() if n["kind"] == "artifact"])
    for mismatch in found["mismatches"]:
        node = result["nodes"][mismatch["path"]]
        node["problems"].append(
            f"recomputed {mismatch['field']}: stored {mismatch['stored']!r} != {mismatch['recomputed']!r}"
        )
        node["status"] = "modified" if node["status"] in ("ok", "stale", "unrecorded") else node["status"]
    paths = {m["path"] for m in found["mismatches"]}
    known = {p["path"] for p in result["problems"]}
    result["problems"] = [
        p if p["path"] not in paths else {**p, "problems": result["nodes"][p["path"]]["problems"]}
        for p in result["problems"]
    ]
    result["problems"] += [
        {"path": p, "status": "modified", "problems": result["nodes"][p]["problems"]} for p in sorted(paths - known)
    ]
    result["ok"] = not result["problems"]


def _run_repair(args: argparse.Namespace, plan: list) -> int:
    """Run the one snakemake command that regenerates every tampered output, then audit again."""
    targets = repair_targets(plan)
    if not targets or any(entry["action"] == "restore" for entry in plan):
        print("not run: restore the files named above first (no rule can regenerate them)", file=sys.stderr)
        return 1
    command = [sys.executable, "-m", "snakemake", *_extra(args), "--forcerun", *targets]
    print("running:", shlex.join(command), file=sys.stderr)
    if subprocess.run(command).returncode != 0:
        return 1
    after = audit(args.artifact)
    print(render_tree(after))
    return 0 if after["ok"] else 1


def _strict(args: argparse.Namespace) -> bool | None:
    """validation.strict of the study; None when its config is not where --configfile says (given after `--`)."""
    try:
        return bool(load_study_config(args.study)["validation"]["strict"])
    except ConfigError:
        return None


def _status(args: argparse.Namespace) -> int:
    """Exit 0 only when every run is done, no output was tampered with and no critical red flag stands."""
    print(args.study.describe(), file=sys.stderr)
    strict = _strict(args)
    os.chdir(args.study.directory)
    rows = parse_summary(run_summary(_extra(args, snakefile=True)))
    tampered = tampered_outputs(rows)
    table = run_table(rows, tampered=tampered)
    add_verdicts(table)
    comparison = comparison_state({key: entry["verdict"] for key, entry in table.items()}, strict)
    if args.json:
        print(json.dumps([{"method": m, "task": t, "seed": s, **v} for (m, t, s), v in table.items()], indent=2))
        print("\n".join(render_verdicts(table, comparison)), file=sys.stderr)
    else:
        print(render_table(table) if table else "no runs in the workflow's plan")
        for problem in tampered.values():
            print(problem.message())
        print("\n".join(render_verdicts(table, comparison)))
    flagged = any(entry["verdict"] and entry["verdict"]["critical"] for entry in table.values())
    return 0 if all(v["state"] == "done" for v in table.values()) and not tampered and not flagged else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tunetrace", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_audit = sub.add_parser("audit", help="verify the lineage of an artifact back to raw data and base model")
    p_audit.add_argument("artifact", help="a workflow output, e.g. results/comparison.json")
    p_audit.add_argument("--json", action="store_true", help="machine-readable output")
    p_audit.add_argument(
        "--fix", action="store_true", help="list the `snakemake --forcerun <output>` commands that repair the tree"
    )
    p_audit.add_argument("--run", action="store_true", help="run that repair (one snakemake command), then audit again")
    p_audit.add_argument(
        "--recompute",
        action="store_true",
        help="also derive every cheap number again from its inputs (evaluations, drift tables, the "
        "comparison) and name each file and field that differs",
    )
    p_audit.epilog = "options for the repair's snakemake follow `--`, e.g. -- --cores 2"
    p_audit.set_defaults(func=_audit)
    p_status = sub.add_parser(
        "status",
        help="done/missing/stale/failed/modified per (method, task, seed), each run's "
        "red-flag verdict and the comparison's state",
        description="Exit 1 when a run is not done, an output was modified, or a critical red "
        "flag stands (each named with its run and report).",
        epilog="options for snakemake follow `--`, e.g. -- --cores 1",
    )
    p_status.add_argument("--json", action="store_true", help="machine-readable output")
    p_status.set_defaults(func=_status)
    p_doctor = sub.add_parser(
        "doctor",
        help="what the Slurm cluster offers vs what the study will request",
        description="Exit 1 when a job's request cannot be met, naming the rule and the fix.",
    )
    p_doctor.add_argument("--profile", default="slurm", help="the snakemake profile (name or directory)")
    p_doctor.set_defaults(func=_doctor)
    for command in (p_audit, p_status, p_doctor):
        add_study_options(command)
    return parser


def _doctor(args: argparse.Namespace) -> int:
    from tunetrace.cluster.doctor import run_doctor

    return run_doctor(args.study, args.profile)


def _check_yaml(study: object) -> None:
    """A config file with a YAML syntax error is named with its line here: snakemake itself only says "Config file
    is not valid JSON or YAML", naming neither the file nor the line."""
    for path in study.config_paths():  # type: ignore[attr-defined]
        if path.is_file():
            load_yaml(path)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tunetrace` console script; exit 0 when everything is in order."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    argv = list(sys.argv[1:] if argv is None else argv)
    # everything after the first `--` goes to snakemake (audit --run, status), never to this parser
    split = argv.index("--") if "--" in argv else len(argv)
    args = build_parser().parse_args(argv[:split])
    args.snakemake_args = argv[split + 1 :]
    try:
        args.study = study_from_args(args)
        _check_yaml(args.study)
        return args.func(args)
    except ConfigError as err:
        print(f"tunetrace {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
