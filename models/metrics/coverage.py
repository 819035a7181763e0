"""Per-class coverage of a conditional generator, judged by the reference classifier.

For each class c the generator was asked for: the share of its samples that the reference
classifier recognises as c. Over all samples: the share of the reference classes that the
classifier finds at least once. Both are only as good as the classifier, so the report
prints its accuracy on the real test split beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNCONDITIONED = -1
"""The label of a sample generated without a class condition."""


@dataclass(frozen=True)
class ClassRecognition:
    label: int
    name: str
    samples: int
    recognised: float
    """Share of the samples conditioned on this class that the classifier calls this class."""


@dataclass(frozen=True)
class CoverageResult:
    per_class: list[ClassRecognition]
    """Classes the generator was conditioned on (absent for an unconditional generator)."""
    mean_recognised: float | None
    classes_present: float
    """Share of the reference classes predicted for at least one sample."""
    predicted_counts: list[int]


class ClassCoverage:
    """Feed (conditioned label, predicted label) pairs in batches, then :meth:`compute`."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        # confusion[c, p]: samples conditioned on c that were predicted as p
        self._confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        self._predicted = np.zeros(num_classes, dtype=np.int64)

    def update(self, conditioned: np.ndarray, predicted: np.ndarray) -> None:
        """conditioned: (b,) int, UNCONDITIONED for none; predicted: (b,) int."""
        conditioned, predicted = np.asarray(conditioned), np.asarray(predicted)
        if conditioned.max(initial=-1) >= self.num_classes:
            raise ValueError(
                f"sample labels reach {conditioned.max()}, the reference has "
                f"{self.num_classes} classes"
            )
        np.add.at(self._predicted, predicted, 1)
        mask = conditioned != UNCONDITIONED
        np.add.at(self._confusion, (conditioned[mask], predicted[mask]), 1)

    def compute(self, class_names: list[str]) -> CoverageResult:
        per_class = [
            ClassRecognition(
                label=c,
                name=class_names[c],
                samples=int(row.sum()),
                recognised=float(row[c] / row.sum()),
            )
            for c, row in enumerate(self._confusion)
            if row.sum() > 0
        ]
        return CoverageResult(
            per_class=per_class,
            mean_recognised=(
                float(np.mean([r.recognised for r in per_class])) if per_class else None
            ),
            classes_present=float((self._predicted > 0).mean()),
            predicted_counts=self._predicted.tolist(),
        )
