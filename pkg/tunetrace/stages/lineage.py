"""Stage of rule summarize_lineage: audit the comparison's lineage into results/lineage/audit.json and the
HTML summary."""

from __future__ import annotations

import os
from typing import Any

from tunetrace.fileio import write_json, write_text
from tunetrace.provenance.audit import audit, render_html
from tunetrace.provenance.lineage import read_record


def summarize_lineage(
    comparison: str | os.PathLike, out_audit: str | os.PathLike, out_summary: str | os.PathLike
) -> dict[str, Any]:
    """Walk the comparison's lineage back to the raw data and base models; write the audit and its HTML."""
    result = audit(comparison)
    write_json(out_audit, result)
    write_text(out_summary, render_html(result, (read_record(comparison) or {}).get("code")))
    return result
