"""Inception Score, accumulated over a stream of logits.

Reference: Salimans et al. 2016, "Improved Techniques for Training GANs", section 4:
IS = exp(E_x KL(p(y|x) || p(y))), computed on each of ``splits`` disjoint splits; the
report gives mean and std over splits (population std, as the original code's np.std).

Per split, E_x KL(p(y|x) || p(y)) = mean_x Σ_y p log p - Σ_y p̄ log p̄ with p̄ the split's
mean of p(y|x), so two running sums per split give the exact score without keeping the
(n, 1008) probabilities. Samples go to splits by a seeded permutation (as torchmetrics
shuffles before chunking), so class-ordered streams do not make one-class splits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import log_softmax

DEFAULT_SPLITS = 10
UNIT = "exp of the mean KL divergence; 1 to the number of classes"


@dataclass(frozen=True)
class InceptionScoreResult:
    mean: float
    std: float
    splits: int


class InceptionScore:
    """Feed logits (b, k) of ``count`` samples in any batch sizes, then :meth:`compute`."""

    def __init__(
        self, count: int, num_classes: int, splits: int = DEFAULT_SPLITS, seed: int = 0
    ) -> None:
        if count < splits:
            raise ValueError(f"Inception Score with {splits} splits needs >= {splits} samples")
        self.count = count
        self.splits = splits
        self._split_of = np.random.default_rng(seed).permutation(count) * splits // count
        self._seen = 0
        self._prob_sum = np.zeros((splits, num_classes), dtype=np.float64)
        self._neg_entropy_sum = np.zeros(splits, dtype=np.float64)
        self._n = np.zeros(splits, dtype=np.int64)

    def update(self, logits: np.ndarray) -> None:
        """logits: (b, k), the classifier's pre-softmax outputs."""
        b = logits.shape[0]
        if self._seen + b > self.count:
            raise ValueError(f"Inception Score was told {self.count} samples and got more")
        split = self._split_of[self._seen : self._seen + b]
        self._seen += b
        log_p = log_softmax(np.asarray(logits, dtype=np.float64), axis=1)
        p = np.exp(log_p)
        np.add.at(self._prob_sum, split, p)
        np.add.at(self._neg_entropy_sum, split, (p * log_p).sum(axis=1))
        np.add.at(self._n, split, 1)

    def compute(self) -> InceptionScoreResult:
        if self._seen != self.count:
            raise ValueError(f"Inception Score expected {self.count} samples, got {self._seen}")
        n = self._n.astype(np.float64)
        marginal = self._prob_sum / n[:, None]
        marginal_term = (marginal * np.log(np.clip(marginal, 1e-300, None))).sum(axis=1)
        scores = np.exp(self._neg_entropy_sum / n - marginal_term)
        return InceptionScoreResult(float(scores.mean()), float(scores.std()), self.splits)
