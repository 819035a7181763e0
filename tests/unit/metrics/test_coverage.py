import numpy as np
import pytest

from models.metrics.coverage import UNCONDITIONED, ClassCoverage


def test_share_recognised_per_conditioned_class():
    coverage = ClassCoverage(3)
    coverage.update(np.array([0, 0, 0, 0, 1, 1]), np.array([0, 0, 0, 2, 1, 0]))
    result = coverage.compute(["a", "b", "c"])
    assert [(r.name, r.samples, r.recognised) for r in result.per_class] == [
        ("a", 4, 0.75),
        ("b", 2, 0.5),
    ]
    assert result.mean_recognised == pytest.approx(0.625)


def test_classes_present_counts_any_predicted_class():
    coverage = ClassCoverage(4)
    coverage.update(np.array([0, 1]), np.array([0, 0]))
    coverage.update(np.full(3, UNCONDITIONED), np.array([2, 2, 0]))
    result = coverage.compute(list("wxyz"))
    assert result.classes_present == 0.5
    assert result.predicted_counts == [3, 0, 2, 0]


def test_unconditional_samples_have_no_per_class_rows():
    coverage = ClassCoverage(2)
    coverage.update(np.full(4, UNCONDITIONED), np.array([0, 1, 1, 1]))
    result = coverage.compute(["a", "b"])
    assert result.per_class == [] and result.mean_recognised is None
    assert result.classes_present == 1.0
