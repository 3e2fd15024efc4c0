"""Representation similarity as pure array functions: linear CKA, unbiased minibatch CKA, cosine.

Rows are examples (or tokens), columns are features. Every function takes float arrays and
returns a float; nothing here reads files.

- Linear CKA: Kornblith et al. 2019, "Similarity of Neural Network Representations Revisited".
- Unbiased minibatch CKA: Nguyen, Raghu, Kornblith 2021, "Do Wide and Deep Networks Learn the
  Same Things?", built on the unbiased HSIC estimator of Song et al. 2012.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def _as_pair(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"expected 2-D arrays (examples x features), got shapes {x.shape} and {y.shape}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"row counts differ: {x.shape[0]} vs {y.shape[0]}; both must hold the same examples in order")
    return x, y


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA: ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F), Xc, Yc column-centred.

    With fewer examples than features the same value is computed from the n x n Gram matrices
    (||Yc^T Xc||_F^2 = <Xc Xc^T, Yc Yc^T>_F), which is cheaper.
    """
    x, y = _as_pair(x, y)
    x = x - x.mean(axis=0, keepdims=True)
    y = y - y.mean(axis=0, keepdims=True)
    if x.shape[0] < max(x.shape[1], y.shape[1]):
        gram_x, gram_y = x @ x.T, y @ y.T
        cross, denom = float(np.sum(gram_x * gram_y)), np.linalg.norm(gram_x) * np.linalg.norm(gram_y)
    else:
        cross = np.linalg.norm(y.T @ x) ** 2
        denom = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(cross / denom) if denom > _EPS else 0.0


def unbiased_hsic(gram_k: np.ndarray, gram_l: np.ndarray) -> float:
    """Unbiased HSIC estimator (Song et al. 2012) of two n x n Gram matrices, n > 3."""
    n = gram_k.shape[0]
    if n < 4:
        raise ValueError(f"unbiased HSIC needs at least 4 examples, got {n}")
    gram_k = gram_k.copy()
    gram_l = gram_l.copy()
    np.fill_diagonal(gram_k, 0.0)
    np.fill_diagonal(gram_l, 0.0)
    k_sum, l_sum = gram_k.sum(axis=0), gram_l.sum(axis=0)
    trace = float(np.sum(gram_k * gram_l))  # tr(K L) for symmetric matrices
    term2 = k_sum.sum() * l_sum.sum() / ((n - 1) * (n - 2))
    term3 = 2.0 * float(k_sum @ l_sum) / (n - 2)
    return (trace + term2 - term3) / (n * (n - 3))


def minibatch_cka(x: np.ndarray, y: np.ndarray, batch_size: int) -> float:
    """Unbiased minibatch linear CKA (Nguyen et al. 2021) over consecutive row chunks.

    HSIC terms are averaged over minibatches before the ratio is taken, so the estimate does not
    depend on the probe-set size the way the biased CKA does (independent inputs give ~0).
    A trailing chunk with fewer than 4 rows is dropped.
    """
    x, y = _as_pair(x, y)
    n = x.shape[0]
    if n < 4:
        raise ValueError(f"minibatch CKA needs at least 4 examples, got {n}")
    size = max(int(batch_size), 4)
    xy = xx = yy = 0.0
    for start in range(0, n, size):
        xb, yb = x[start : start + size], y[start : start + size]
        if xb.shape[0] < 4:
            break
        gram_x, gram_y = xb @ xb.T, yb @ yb.T
        xy += unbiased_hsic(gram_x, gram_y)
        xx += unbiased_hsic(gram_x, gram_x)
        yy += unbiased_hsic(gram_y, gram_y)
    denom = np.sqrt(max(xx, 0.0) * max(yy, 0.0))
    return float(xy / denom) if denom > _EPS else 0.0


def cosine_per_example(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of x with the same row of y (0 where a row is all zeros)."""
    x, y = _as_pair(x, y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature counts differ: {x.shape[1]} vs {y.shape[1]}; cosine needs the same space")
    norms = np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)
    dots = np.einsum("ij,ij->i", x, y)
    return np.where(norms > _EPS, dots / np.maximum(norms, _EPS), 0.0)


def mean_cosine(x: np.ndarray, y: np.ndarray) -> float:
    """Mean over examples of the per-example cosine similarity."""
    return float(cosine_per_example(x, y).mean())
