"""Prepared data: readers, row checks with errors naming file/row/column, splits."""
