# tunetrace: a fine-tuning study as one Snakemake DAG. This file is the table of contents;
# docs/architecture.md maps rules, library packages and artifacts.

from snakemake.utils import min_version

min_version("9.0")

import os
import sys
from pathlib import Path

# Planning and jobs import the tunetrace library of *this* checkout, whatever else is installed: pkg/ goes
# first on sys.path before anything imports tunetrace. (PYTHONPATH carries it to the jobs; it is extended,
# not required, so it is no `envvars:` of the workflow.)
PKG_DIR = str(Path(workflow.basedir) / "pkg")
sys.path.insert(0, PKG_DIR)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (PKG_DIR, os.environ.get("PYTHONPATH")) if p))

from tunetrace.logutil import skip_exit_collection

skip_exit_collection()  # each snakemake call exits sooner: no collection over Snakemake's objects at exit

# A --configfile on the command line replaces the embedded default instead of merging into it
# (Snakemake would otherwise deep-merge both configs' tasks and methods).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


include: "rules/config.smk"
include: "rules/params.smk"
include: "rules/code.smk"
include: "rules/resources.smk"
include: "rules/common.smk"
include: "rules/checks.smk"
include: "rules/data.smk"
include: "rules/baseline.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/merge.smk"
include: "rules/compare.smk"
include: "rules/representations.smk"
include: "rules/drift.smk"
include: "rules/curves.smk"
include: "rules/guard.smk"
include: "rules/lineage.smk"


report: "report/workflow.rst"


rule all:
    input:
        "results/comparison.json",
        "results/lineage/summary.html",
    default_target: True
