"""Fixtures for the model tests: tiny data and tiny networks so the files run in seconds."""

from __future__ import annotations

import pytest
import torch

from models import datasets

MNIST_T10K = "/work/shared/data/mnist-t10k"


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    # The test machines are shared; one intra-op thread also keeps CPU results exact.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_shapes() -> datasets.ImageDataset:
    """64 labelled 8x8 RGB shapes."""
    return datasets.load("shapes", image_size=8, count=64)
