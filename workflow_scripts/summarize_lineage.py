"""Adapter for rule summarize_lineage: audit the comparison's lineage into the report."""

from tunetrace.fileio import write_json, write_text
from tunetrace.logutil import setup_logging
from tunetrace.provenance.audit import audit, render_html
from tunetrace.provenance.lineage import discard_records, read_record

setup_logging(snakemake.log[0], capture_stderr=True)
discard_records(snakemake.output)  # no record may outlive its output if this job fails
result = audit(snakemake.input.comparison)
write_json(snakemake.output.audit, result)
write_text(snakemake.output.summary, render_html(result, (read_record(snakemake.input.comparison) or {}).get("code")))

from tunetrace.provenance.lineage import record_lineage  # noqa: E402  (lineage: keep last)

record_lineage(snakemake)
