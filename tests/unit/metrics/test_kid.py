import numpy as np
import pytest
import torch

from models.metrics.kid import (
    draw_subsets,
    kernel_inception_distance,
    kid_over_subsets,
    poly_mmd,
)

torchmetrics_kid = pytest.importorskip("torchmetrics.image.kid")


def _sets(d: int = 32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, d)), rng.normal(loc=0.2, size=(250, d))


def test_poly_mmd_matches_torchmetrics_on_the_same_subset():
    real, fake = _sets()
    ours = poly_mmd(real[:100], fake[:100])
    theirs = torchmetrics_kid.poly_mmd(
        torch.from_numpy(real[:100]), torch.from_numpy(fake[:100])
    ).item()
    assert ours == pytest.approx(theirs, rel=1e-10)


def test_kid_matches_torchmetrics_metric_on_the_same_subsets():
    real, fake = _sets()
    metric = torchmetrics_kid.KernelInceptionDistance(
        feature=torch.nn.Identity(), subsets=8, subset_size=50
    )
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(fake), real=False)
    torch.manual_seed(7)
    mean, std = metric.compute()
    # torchmetrics draws randperm(real) then randperm(fake) per subset; replay the draws.
    torch.manual_seed(7)
    subsets = [
        (torch.randperm(300)[:50].numpy(), torch.randperm(250)[:50].numpy()) for _ in range(8)
    ]
    ours = kid_over_subsets(real, fake, subsets)
    assert ours.mean == pytest.approx(mean.item(), rel=1e-9)
    assert ours.std == pytest.approx(std.item(), rel=1e-9)


def test_subset_size_is_clipped_to_the_smaller_set():
    real, fake = _sets()
    result = kernel_inception_distance(real, fake, subsets=3, subset_size=1000)
    assert result.subset_size == 250


def test_same_distribution_scores_near_zero_and_shifted_far_above():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    same = kernel_inception_distance(a, b, subsets=20, subset_size=200)
    shifted = kernel_inception_distance(a, b + 1.0, subsets=20, subset_size=200)
    assert abs(same.mean) < 3 * same.std + 1e-3
    assert shifted.mean > 20 * abs(same.mean)


def test_subsets_are_reproducible_from_the_seed():
    first = draw_subsets(100, 80, 3, 10, seed=5)
    again = draw_subsets(100, 80, 3, 10, seed=5)
    for (r1, f1), (r2, f2) in zip(first, again, strict=True):
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(f1, f2)
