"""The `tunetrace` command: `audit` (lineage of an artifact) and `status` (state of every run)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from tunetrace.provenance.audit import audit, render_tree
from tunetrace.provenance.status import parse_summary, render_table, run_summary, run_table


def _audit(args: argparse.Namespace) -> int:
    result = audit(args.artifact)
    print(json.dumps(result, indent=2, sort_keys=True) if args.json else render_tree(result))
    return 0 if result["ok"] else 1


def _status(args: argparse.Namespace) -> int:
    extra = list(args.snakemake_args)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    table = run_table(parse_summary(run_summary(extra)))
    if args.json:
        print(json.dumps([{"method": m, "task": t, "seed": s, **v} for (m, t, s), v in table.items()], indent=2))
    else:
        print(render_table(table) if table else "no runs in the workflow's plan")
    return 0 if all(v["state"] == "done" for v in table.values()) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tunetrace", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_audit = sub.add_parser("audit", help="verify the lineage of an artifact back to raw data and base model")
    p_audit.add_argument("artifact", help="a workflow output, e.g. results/comparison.json")
    p_audit.add_argument("--json", action="store_true", help="machine-readable output")
    p_audit.set_defaults(func=_audit)
    p_status = sub.add_parser("status", help="done/missing/stale/failed per (method, task, seed)")
    p_status.add_argument("--json", action="store_true", help="machine-readable output")
    p_status.add_argument("snakemake_args", nargs=argparse.REMAINDER,
                          help="passed to snakemake after `--`, e.g. -- --configfile my.yaml")
    p_status.set_defaults(func=_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tunetrace` console script; exit 0 when everything is in order."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
