"""Similarity functions against known answers."""

from __future__ import annotations

import numpy as np
import pytest

from tunetrace.analysis.similarity import cosine_per_example, linear_cka, mean_cosine, minibatch_cka, unbiased_hsic


def _rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def _orthogonal(d: int, rng: np.random.Generator) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


def _reference_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Kernel form of Kornblith et al.: HSIC(K, L) = tr(K H L H) / (n - 1)^2 with K = X X^T."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    gram_x, gram_y = x @ x.T, y @ y.T
    hsic = lambda a, b: np.trace(a @ h @ b @ h) / (n - 1) ** 2  # noqa: E731
    return hsic(gram_x, gram_y) / np.sqrt(hsic(gram_x, gram_x) * hsic(gram_y, gram_y))


def _reference_unbiased_hsic(gram_k: np.ndarray, gram_l: np.ndarray) -> float:
    """Song et al. 2012, eq. 5, written out term by term with loops."""
    n = gram_k.shape[0]
    kt, lt = gram_k.copy(), gram_l.copy()
    np.fill_diagonal(kt, 0)
    np.fill_diagonal(lt, 0)
    ones = np.ones(n)
    term1 = np.trace(kt @ lt)
    term2 = (ones @ kt @ ones) * (ones @ lt @ ones) / ((n - 1) * (n - 2))
    term3 = 2.0 / (n - 2) * sum((kt @ lt)[i, j] for i in range(n) for j in range(n))
    return (term1 + term2 - term3) / (n * (n - 3))


def test_cka_of_x_with_itself_is_one():
    """CKA(X, X) = 1 for both estimators."""
    x = _rng().normal(size=(50, 8))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert minibatch_cka(x, x, batch_size=25) == pytest.approx(1.0, abs=1e-12)


def test_cka_invariant_to_orthogonal_transform_and_isotropic_scaling():
    """CKA(X, 3 X Q) = 1 and CKA(X Q, Y) = CKA(X, Y) for an orthogonal Q."""
    rng = _rng()
    x, y = rng.normal(size=(60, 10)), rng.normal(size=(60, 7))
    q = _orthogonal(10, rng)
    assert linear_cka(x, 3.0 * x @ q) == pytest.approx(1.0, abs=1e-10)
    assert linear_cka(x @ q * 0.5, y) == pytest.approx(linear_cka(x, y), abs=1e-10)
    assert minibatch_cka(x @ q * 7.0, y, 20) == pytest.approx(minibatch_cka(x, y, 20), abs=1e-10)


def test_unbiased_cka_of_independent_random_matrices_is_near_zero():
    """Independent inputs: unbiased CKA ~ 0 while the biased estimate is clearly positive."""
    rng = _rng()
    x, y = rng.normal(size=(400, 100)), rng.normal(size=(400, 100))
    assert abs(minibatch_cka(x, y, batch_size=400)) < 0.02
    assert linear_cka(x, y) > 0.1


def test_linear_cka_agrees_with_reference_formula():
    """Feature-space linear CKA equals the kernel-form reference to 1e-6."""
    rng = _rng()
    x = rng.normal(size=(40, 12))
    y = x @ rng.normal(size=(12, 5)) + 0.5 * rng.normal(size=(40, 5))
    assert linear_cka(x, y) == pytest.approx(_reference_cka(x, y), abs=1e-6)
    wide = rng.normal(size=(20, 50))  # fewer examples than features: the Gram-form branch
    shifted = wide[:, :30] * 2 + 0.3
    assert linear_cka(wide, shifted) == pytest.approx(_reference_cka(wide, shifted), abs=1e-6)


def test_unbiased_hsic_agrees_with_reference_formula():
    """Vectorised unbiased HSIC equals the term-by-term formula to 1e-6."""
    rng = _rng()
    x, y = rng.normal(size=(12, 4)), rng.normal(size=(12, 3))
    gram_x, gram_y = x @ x.T, y @ y.T
    assert unbiased_hsic(gram_x, gram_y) == pytest.approx(_reference_unbiased_hsic(gram_x, gram_y), abs=1e-6)


def test_cosine_on_hand_made_vectors():
    """Same direction 1, orthogonal 0, opposite -1, zero row 0; the mean averages them."""
    x = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    y = np.array([[0.0, 2.0], [3.0, 3.0], [-2.0, 0.0], [1.0, 1.0]])
    assert cosine_per_example(x, y).tolist() == pytest.approx([0.0, 1.0, -1.0, 0.0])
    assert mean_cosine(x, y) == pytest.approx(0.0)


def test_mismatched_rows_are_rejected():
    """Different example counts raise instead of returning a number."""
    with pytest.raises(ValueError, match="row counts differ"):
        linear_cka(np.zeros((3, 2)), np.zeros((4, 2)))
