"""Improved precision and recall from k-NN manifolds.

Reference: Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing
Generative Models", section 3: each sample's manifold is the union of balls around its
points, the radius of a point being the distance to its k-th nearest neighbour (k = 3).
Precision is the share of fake samples inside the real manifold; recall the share of real
samples inside the fake manifold. Distances are taken with scikit-learn in chunks, so
memory stays at scikit-learn's working_memory whatever the sample counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import pairwise_distances_chunked
from sklearn.neighbors import NearestNeighbors

DEFAULT_K = 3


@dataclass(frozen=True)
class PrecisionRecall:
    precision: float
    recall: float
    k: int


def knn_radii(points: np.ndarray, k: int) -> np.ndarray:
    """points: (n, d) -> (n,) distance of each point to its k-th nearest other point."""
    if points.shape[0] <= k:
        raise ValueError(f"k-NN radii with k={k} need more than {k} points, got {points.shape[0]}")
    # The query set is the fitted set, so column 0 is the point itself (distance 0).
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    return distances[:, k]


def inside_manifold(queries: np.ndarray, points: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """(q,) bool: query i lies within radii[j] of some points[j]; queries (q, d), points (n, d)."""
    chunks = pairwise_distances_chunked(
        queries, points, reduce_func=lambda d, _start: (d <= radii[None, :]).any(axis=1)
    )
    return np.concatenate(list(chunks))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = DEFAULT_K) -> PrecisionRecall:
    """real: (n_r, d), fake: (n_f, d) features of the same extractor."""
    real, fake = real.astype(np.float64), fake.astype(np.float64)
    return PrecisionRecall(
        precision=float(inside_manifold(fake, real, knn_radii(real, k)).mean()),
        recall=float(inside_manifold(real, fake, knn_radii(fake, k)).mean()),
        k=k,
    )
