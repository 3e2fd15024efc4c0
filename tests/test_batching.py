"""tasks.batching: length order and its inverse, for numpy arrays and torch tensors."""

from __future__ import annotations

import numpy as np
import torch

from tunetrace.tasks.batching import in_original_order, length_order


def test_length_order_is_stable_and_shortest_first():
    assert length_order([5, 2, 9, 2, 1]).tolist() == [4, 1, 3, 0, 2]


def test_in_original_order_inverts_the_permutation():
    lengths = [7, 3, 3, 12, 1, 5]
    order = length_order(lengths)
    by_length = np.asarray(lengths)[order]  # what a pass over the examples in `order` returns, row per example
    assert in_original_order(by_length, order).tolist() == lengths
    as_tensor = in_original_order(torch.tensor(by_length).unsqueeze(1).repeat(1, 2), order)
    assert isinstance(as_tensor, torch.Tensor) and as_tensor[:, 1].tolist() == lengths
