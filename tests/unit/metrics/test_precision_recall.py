import numpy as np
import pytest

from models.metrics.precision_recall import inside_manifold, knn_radii, precision_recall


def test_identical_sets_have_precision_and_recall_one():
    x = np.random.default_rng(0).normal(size=(200, 8))
    result = precision_recall(x, x.copy(), k=3)
    assert (result.precision, result.recall) == (1.0, 1.0)


def test_far_apart_sets_have_precision_and_recall_zero():
    rng = np.random.default_rng(1)
    result = precision_recall(rng.normal(size=(100, 4)), rng.normal(size=(100, 4)) + 100)
    assert (result.precision, result.recall) == (0.0, 0.0)


def test_mode_collapse_keeps_precision_and_loses_recall():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(400, 2))
    collapsed = real[real[:, 0] > 0.5][:100] + rng.normal(scale=0.01, size=(100, 2))
    result = precision_recall(real, collapsed)
    assert result.precision > 0.9
    assert result.recall < 0.5


def test_chunked_membership_matches_brute_force():
    rng = np.random.default_rng(3)
    points, queries = rng.normal(size=(150, 5)), rng.normal(size=(90, 5)) * 1.3
    radii = knn_radii(points, 3)
    distances = np.linalg.norm(queries[:, None, :] - points[None, :, :], axis=2)
    np.testing.assert_array_equal(
        inside_manifold(queries, points, radii), (distances <= radii[None, :]).any(axis=1)
    )


def test_radius_is_distance_to_kth_other_point():
    points = np.array([[0.0], [1.0], [3.0], [6.0], [10.0]])
    np.testing.assert_allclose(knn_radii(points, 2), [3.0, 2.0, 3.0, 4.0, 7.0])


def test_too_few_points_for_k_is_refused():
    with pytest.raises(ValueError, match="need more than 3 points"):
        knn_radii(np.zeros((3, 2)), 3)
