import importlib.util

import numpy as np
import pytest
from scipy import linalg

from models.metrics.frechet import RunningStats, frechet_distance


def _features(rng: np.random.Generator, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    mixing = rng.normal(size=(d, d)) / np.sqrt(d)
    return np.maximum(rng.normal(size=(n, d)) @ mixing + shift, 0.0)


def _stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _sqrtm_reference(mu1, sigma1, mu2, sigma2) -> float:
    """The textbook formula with scipy's matrix square root."""
    covmean = linalg.sqrtm(sigma1 @ sigma2).real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


@pytest.mark.parametrize(("n", "d"), [(400, 16), (2000, 64)])
def test_matches_scipy_sqrtm_formula(n, d):
    rng = np.random.default_rng(0)
    a, b = _stats(_features(rng, n, d)), _stats(_features(rng, n, d, shift=0.2))
    assert frechet_distance(*a, *b) == pytest.approx(_sqrtm_reference(*a, *b), rel=1e-6)


def test_singular_covariances_give_the_exact_finite_distance():
    # 20 samples in 64 dims: both covariances have rank 19.
    rng = np.random.default_rng(1)
    a, b = _stats(_features(rng, 20, 64)), _stats(_features(rng, 20, 64, shift=0.5))
    value = frechet_distance(*a, *b)
    assert np.isfinite(value)
    assert value == pytest.approx(_sqrtm_reference(*a, *b), rel=1e-5)


@pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is None,
    reason="pytorch_fid.fid_score imports torchvision",
)
def test_matches_pytorch_fid():
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(2)
    for n, d in [(500, 32), (40, 64)]:  # well-conditioned, then singular
        a, b = _stats(_features(rng, n, d)), _stats(_features(rng, n, d, shift=0.3))
        assert frechet_distance(*a, *b) == pytest.approx(
            calculate_frechet_distance(*a, *b), rel=1e-6
        )


def test_distance_of_a_set_to_itself_is_zero():
    a = _stats(_features(np.random.default_rng(3), 500, 32))
    assert abs(frechet_distance(*a, *a)) < 1e-8


def test_real_vs_noise_is_far_above_real_vs_real():
    rng = np.random.default_rng(4)
    real1, real2 = _features(rng, 1000, 16), _features(rng, 1000, 16)
    real2 = real1[rng.permutation(1000)] + rng.normal(scale=0.01, size=real1.shape)
    noise = rng.uniform(0, 3, size=(1000, 16))
    floor = frechet_distance(*_stats(real1), *_stats(real2))
    assert frechet_distance(*_stats(real1), *_stats(noise)) > 100 * floor


def test_streaming_stats_equal_full_batch_stats():
    x = _features(np.random.default_rng(5), 1003, 24)
    stats = RunningStats(24)
    for start in range(0, 1003, 100):
        stats.update(x[start : start + 100])
    mu, sigma = _stats(x)
    assert stats.count == 1003
    np.testing.assert_allclose(stats.mean, mu, rtol=1e-12)
    np.testing.assert_allclose(stats.cov, sigma, rtol=1e-9, atol=1e-12)


def test_mismatched_dimensions_are_refused():
    with pytest.raises(ValueError, match="differ in dimension"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
