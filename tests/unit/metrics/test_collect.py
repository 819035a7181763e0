import numpy as np
import pytest
import torch

from models.engines.base import Stopped
from models.metrics.collect import Reservoir, collect, dataset_batches


class FlattenExtractor:
    """Pixels as features: makes kept items checkable against the images."""

    name = "pixels"
    tag = "pixels"
    standard = False
    dim = 4

    def __call__(self, images):
        return self.with_logits(images)[0]

    def with_logits(self, images):
        x = images.reshape(images.shape[0], -1).float().numpy()
        return x, x


def _data(n: int = 103):
    images = torch.randint(0, 256, (n, 1, 2, 2), dtype=torch.uint8)
    return images, torch.arange(n)


def test_running_stats_cover_every_image_and_the_sample_is_capped():
    images, labels = _data()
    result = collect(dataset_batches(images, labels, 10), [FlattenExtractor()], keep=30, seed=0)
    x = images.reshape(103, -1).double().numpy()
    assert result.count == 103
    np.testing.assert_allclose(result.stats["pixels"].mean, x.mean(axis=0))
    np.testing.assert_allclose(result.stats["pixels"].cov, np.cov(x, rowvar=False))
    assert result.features["pixels"].shape == (30, 4) and result.labels.shape == (30,)


def test_kept_features_labels_and_images_belong_together():
    images, labels = _data()
    result = collect(
        dataset_batches(images, labels, 7), [FlattenExtractor()], keep=25, seed=1, keep_images=True
    )
    assert len(set(result.labels.tolist())) == 25
    np.testing.assert_array_equal(result.images.numpy(), images[result.labels].numpy())
    np.testing.assert_array_equal(
        result.features["pixels"], images[result.labels].reshape(25, -1).float().numpy()
    )


def test_fewer_images_than_keep_are_all_kept():
    images, labels = _data(12)
    result = collect(dataset_batches(images, labels, 5), [FlattenExtractor()], keep=50, seed=0)
    assert sorted(result.labels.tolist()) == list(range(12))


def test_reservoir_sample_is_uniform_over_the_stream():
    counts = np.zeros(100)
    for seed in range(400):
        reservoir, slots = Reservoir(10, seed), np.full(10, -1)
        for start in range(0, 100, 16):
            positions, chosen = reservoir.offer(min(16, 100 - start))
            slots[chosen] = start + positions
        counts[slots] += 1
    # Each item is kept with probability 1/10: 40 of 400 runs, binomial std ~6.
    assert counts.min() > 15 and counts.max() < 70
    assert abs(counts[:10].mean() - counts[90:].mean()) < 10


def test_should_stop_stops_the_pass():
    images, labels = _data()
    with pytest.raises(Stopped):
        collect(
            dataset_batches(images, labels, 10),
            [FlattenExtractor()],
            keep=10,
            seed=0,
            should_stop=lambda: True,
        )
