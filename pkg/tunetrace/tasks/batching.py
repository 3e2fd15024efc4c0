"""Length-sorted batches for forward passes over a fixed set (prediction, captures, features).

A batch pads every example to its longest one, so batching a set shortest first spends a third to a half fewer
padded tokens on sentence data than batching it in file order; the rows are put back in the set's order after.
With an attention mask, padding does not change an example's outputs, so only the cost changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np

Rows = TypeVar("Rows")


def length_order(lengths: Sequence[int]) -> np.ndarray:
    """Positions of the examples shortest first (ties keep their order)."""
    return np.argsort(np.asarray(lengths), kind="stable")


def in_original_order(rows: Rows, order: np.ndarray | Sequence[int]) -> Rows:
    """Rows computed in `order` (row j is example order[j]) back in the examples' own order; a numpy array or a
    torch tensor, returned as the same kind."""
    restored: Any = rows.copy() if isinstance(rows, np.ndarray) else rows.clone()  # type: ignore[attr-defined]
    restored[np.asarray(order)] = rows
    return restored
