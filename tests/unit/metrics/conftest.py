"""Small, offline fixtures: scikit-learn's bundled digits at 8 px, cut down."""

from __future__ import annotations

import pytest
import torch

from models import datasets
from models.datasets import ImageDataset
from models.metrics.classifier import ClassifierConfig
from models.metrics.evaluate import EvaluationConfig
from models.metrics.utility import UtilityConfig

FAST_CLASSIFIER = ClassifierConfig(epochs=2, min_steps=30, width=8)
"""Good enough to tell 8 px digits apart (> 50% test accuracy) in about a second."""
TINY_CLASSIFIER = ClassifierConfig(epochs=1, min_steps=8, width=8)
"""For tests that check bookkeeping, not accuracy."""


def take(data: ImageDataset, n: int) -> ImageDataset:
    """The first n images of a seeded shuffle (digits splits are in file order)."""
    idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:n]
    return ImageDataset(
        data.name,
        data.split,
        data.images[idx],
        data.labels[idx],
        data.num_classes,
        data.class_names,
    )


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """On a shared CPU, OpenMP threads spinning on busy cores make these small convolutions
    10-20x slower than a single thread (measured: 0.2 s vs 3-5 s per tiny classifier)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits_train() -> ImageDataset:
    return datasets.load("digits", "train")


@pytest.fixture(scope="session")
def digits_test() -> ImageDataset:
    return datasets.load("digits", "test")


@pytest.fixture
def small_loader(digits_train: ImageDataset, digits_test: ImageDataset):
    """A load_dataset for evaluate(): 300 train and 120 test digits at 8 px."""

    def load(name: str, split: str, image_size: int | None = None) -> ImageDataset:
        assert name == "digits" and image_size == 8
        return take(digits_train, 300) if split == "train" else take(digits_test, 120)

    return load


@pytest.fixture
def fast_config() -> EvaluationConfig:
    return EvaluationConfig(
        batch_size=64,
        keep=200,
        kid_subsets=5,
        kid_subset_size=50,
        is_splits=2,
        grid_per_class=4,
        tsne_points=60,
        reference_classifier=FAST_CLASSIFIER,
        utility=UtilityConfig(subset_sizes=(5,), classifier=TINY_CLASSIFIER),
    )
