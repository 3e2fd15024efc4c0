"""Errors for unusable task data, naming the file, row and column, and the checks every reader shares."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


class DataError(ValueError):
    """Task data is unusable; the message names the file, row and column."""


def check_columns(frame: pd.DataFrame, columns: list[str], origin: str) -> None:
    """Stop naming the missing columns and the ones the file has."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"{origin}: missing column(s) {missing}; the file has {list(frame.columns)}. "
            "Fix the task's text_fields/label_field/group_field/id_field or the file header"
        )


def row_number(position: int) -> int:
    """1-based line number in a delimited file with a header (row 1 is the header)."""
    return int(position) + 2


def row_error(origin: str, position: int, column: str, message: str) -> DataError:
    """A DataError naming the file, the row (as a line number) and the column."""
    return DataError(f"{origin}: row {row_number(position)}, column '{column}': {message}")


def cell_text(value: Any) -> str:
    """A cell as text: missing values (None, NaN) become the empty string."""
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def check_unique_ids(ids: pd.Series, origin: str, id_field: str | None) -> None:
    """Stop on the first duplicate example id."""
    if ids.duplicated().any():
        raise DataError(
            f"{origin}: column '{id_field}': duplicate id {ids[ids.duplicated()].iloc[0]!r}; ids must be unique"
        )
