"""Lineage records, audit, status."""
