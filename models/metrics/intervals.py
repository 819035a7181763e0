"""95 % intervals for the privacy figures: a value with the percentile bootstrap around it.

Efron & Tibshirani 1993, "An Introduction to the Bootstrap", ch. 13 (percentile interval).
Every figure of the memorization audit and the membership-inference attacks is a statistic
of a finite sample of images; the interval says how far another sample of the same size
could move it, which is what a reader needs before comparing it with its real-vs-real floor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

LEVEL = 0.95
RESAMPLES = 1000


@dataclass(frozen=True)
class Interval:
    """A statistic and its bootstrap interval at :data:`LEVEL` (``low`` ≤ ``high``)."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def bootstrap(
    statistic: Callable[[np.ndarray], float],
    n: int,
    *,
    seed: int,
    resamples: int = RESAMPLES,
) -> Interval:
    """``statistic(rows)`` on all ``n`` rows (``np.arange(n)``), and the percentile interval
    of the same statistic over ``resamples`` draws of ``n`` rows with replacement.

    ``statistic`` takes the row indices of one resample, so a paired statistic (an AUC over
    members and non-members, a share over generated images) resamples the rows it needs.
    """
    if n < 1:
        raise ValueError("bootstrap needs at least one row")
    rng = np.random.default_rng(seed)
    value = float(statistic(np.arange(n)))
    draws = np.array([statistic(rng.integers(0, n, n)) for _ in range(resamples)], dtype=float)
    alpha = (1.0 - LEVEL) / 2.0
    low, high = np.quantile(draws, [alpha, 1.0 - alpha])
    return Interval(value=value, low=float(min(low, value)), high=float(max(high, value)))


def share(flags: np.ndarray, *, seed: int, resamples: int = RESAMPLES) -> Interval:
    """The share of true ``flags`` (bool (n,)) with its bootstrap interval."""
    flags = np.asarray(flags, dtype=bool)
    return bootstrap(
        lambda rows: float(flags[rows].mean()), len(flags), seed=seed, resamples=resamples
    )
