"""Kernel Inception Distance: an unbiased MMD² with a cubic polynomial kernel, averaged
over random subsets.

Reference: Bińkowski et al. 2018, "Demystifying MMD GANs", eq. (2) with
k(x, y) = (x·y / d + 1)³. Defaults and estimator follow torchmetrics'
``KernelInceptionDistance`` (100 subsets of 1,000; mean and population std over subsets);
tests/unit/metrics/test_kid.py checks this against torchmetrics on the same subsets.
Written here because models/ may import only torch, numpy, scipy, scikit-learn and PIL.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_SUBSETS = 100
DEFAULT_SUBSET_SIZE = 1000


@dataclass(frozen=True)
class KIDResult:
    mean: float
    std: float
    subsets: int
    subset_size: int


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """x: (m, d), y: (n, d) -> (m, n) with k(x, y) = (x·y / d + 1)³."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def poly_mmd(real: np.ndarray, fake: np.ndarray) -> float:
    """Unbiased MMD² of two equally sized sets; real, fake: (m, d) with m >= 2.

    The within-set sums leave out the diagonal (k(x, x)); the cross term keeps it.
    """
    m = real.shape[0]
    if fake.shape[0] != m or m < 2:
        raise ValueError(f"poly_mmd needs two sets of the same size >= 2, got {m}, {fake.shape[0]}")
    real, fake = real.astype(np.float64), fake.astype(np.float64)
    k_xx, k_yy, k_xy = (
        polynomial_kernel(real, real),
        polynomial_kernel(fake, fake),
        polynomial_kernel(real, fake),
    )
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / m**2)


def draw_subsets(
    n_real: int, n_fake: int, subsets: int, subset_size: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``subsets`` pairs of index arrays (subset_size,), each drawn without replacement."""
    rng = np.random.default_rng(seed)
    return [
        (rng.permutation(n_real)[:subset_size], rng.permutation(n_fake)[:subset_size])
        for _ in range(subsets)
    ]


def kid_over_subsets(
    real: np.ndarray, fake: np.ndarray, subsets: list[tuple[np.ndarray, np.ndarray]]
) -> KIDResult:
    """KID of real (n_r, d) vs fake (n_f, d) over the given index pairs."""
    scores = np.array([poly_mmd(real[r], fake[f]) for r, f in subsets])
    return KIDResult(
        mean=float(scores.mean()),
        std=float(scores.std()),
        subsets=len(subsets),
        subset_size=int(subsets[0][0].shape[0]),
    )


def kernel_inception_distance(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    subsets: int = DEFAULT_SUBSETS,
    subset_size: int = DEFAULT_SUBSET_SIZE,
    seed: int = 0,
) -> KIDResult:
    """KID of real (n_r, d) vs fake (n_f, d); subset_size is clipped to min(n_r, n_f)."""
    size = min(subset_size, real.shape[0], fake.shape[0])
    if size < 2:
        raise ValueError(
            f"KID needs at least 2 samples per set, got {real.shape[0]}, {fake.shape[0]}"
        )
    return kid_over_subsets(
        real, fake, draw_subsets(real.shape[0], fake.shape[0], subsets, size, seed)
    )
