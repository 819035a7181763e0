"""Fréchet distance between Gaussians fitted to two feature sets, and the streaming
statistics that fit them.

Reference: Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to
a Local Nash Equilibrium" (FID); pytorch-fid's ``calculate_frechet_distance`` is the
implementation this one is checked against (tests/unit/metrics/test_frechet.py).

    d² = ||μ₁ - μ₂||² + tr(Σ₁) + tr(Σ₂) - 2 tr √(Σ₁ Σ₂)
"""

from __future__ import annotations

import numpy as np


class RunningStats:
    """Mean and covariance of a feature stream, in bounded memory.

    Keeps the float64 sum (d,) and outer-product sum (d, d) of every row seen, so 50,000
    Inception features cost one (2048, 2048) matrix instead of a (50000, 2048) array.
    """

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.count = 0
        self._sum = np.zeros(dim, dtype=np.float64)
        self._outer = np.zeros((dim, dim), dtype=np.float64)

    def update(self, features: np.ndarray) -> None:
        """features: (b, dim)."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"expected features of shape (b, {self.dim}), got {x.shape}")
        self.count += x.shape[0]
        self._sum += x.sum(axis=0)
        self._outer += x.T @ x

    @property
    def mean(self) -> np.ndarray:
        """(dim,)"""
        return self._sum / self.count

    @property
    def cov(self) -> np.ndarray:
        """(dim, dim), normalised by n - 1 as ``np.cov`` (and so pytorch-fid) does."""
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 samples, got {self.count}")
        mu = self.mean
        return (self._outer - self.count * np.outer(mu, mu)) / (self.count - 1)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    mu: (d,), sigma: (d, d) symmetric positive semi-definite.

    tr √(Σ₁Σ₂) is taken from eigenvalues instead of ``scipy.linalg.sqrtm``: with
    A = √Σ₁ (symmetric, from ``eigh``), Σ₁Σ₂ = A(AΣ₂) has the eigenvalues of the symmetric
    PSD matrix AΣ₂A, so tr √(Σ₁Σ₂) = Σᵢ √λᵢ(AΣ₂A). Two symmetric eigendecompositions are
    several times faster than sqrtm at d = 2048 and stay exact when Σ₁ is singular
    (fewer samples than dimensions), the case where pytorch-fid's sqrtm goes non-finite
    and it retries with an eps·I offset; no offset is needed here.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1 = np.atleast_2d(sigma1).astype(np.float64)
    sigma2 = np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"statistics differ in dimension: mu {mu1.shape} vs {mu2.shape}, "
            f"sigma {sigma1.shape} vs {sigma2.shape}"
        )
    if not all(np.isfinite(a).all() for a in (mu1, mu2, sigma1, sigma2)):
        raise ValueError("feature statistics contain NaN or inf; check the feature extractor")
    diff = mu1 - mu2
    return float(
        diff @ diff
        + np.trace(sigma1)
        + np.trace(sigma2)
        - 2.0 * _trace_sqrt_product(sigma1, sigma2)
    )


def _trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr √(Σ₁Σ₂) for symmetric PSD Σ₁, Σ₂ of shape (d, d)."""
    eigvals, eigvecs = np.linalg.eigh(sigma1)
    # Round-off makes eigenvalues of a PSD matrix slightly negative; they are 0.
    sqrt_sigma1 = (eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))) @ eigvecs.T
    middle = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    middle = (middle + middle.T) / 2.0  # symmetric up to round-off; eigvalsh needs it exactly
    return float(np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None)).sum())
