"""Adapter for rule summarize_lineage: audit the comparison's lineage into the report."""

from tunetrace.jobcontext import job
from tunetrace.stages.lineage import summarize_lineage

with job(snakemake) as j:
    summarize_lineage(j.input.comparison, out_audit=j.output.audit, out_summary=j.output.summary)
