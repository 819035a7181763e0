"""Uploaded datasets as stored: the split is stratified and seeded, and loading a split
gives exactly its images."""

import numpy as np
import pytest

from models import uploads
from models.datasets import DatasetError


def test_split_holds_out_the_fraction_of_every_class():
    labels = np.repeat([0, 1, 2], [10, 5, 1])
    mask = uploads.split_mask(labels, 0.2, seed=0)
    assert [int(mask[labels == c].sum()) for c in range(3)] == [2, 1, 0]
    assert np.array_equal(mask, uploads.split_mask(labels, 0.2, seed=0))


def test_test_fraction_zero_keeps_everything_in_train():
    assert uploads.split_mask(np.arange(6) % 2, 0.0, seed=0).sum() == 0


def stored(tmp_path, split):
    path = tmp_path / "data.npz"
    images = np.arange(4, dtype=np.uint8).repeat(4).reshape(4, 1, 2, 2)
    np.savez(path, images=images, labels=np.array([0, 1, 0, 1]), classes=np.array(["a", "b"]),
             split=np.array(split, dtype=np.uint8))  # fmt: skip
    return path


def test_load_gives_the_split_asked_for(tmp_path):
    data = uploads.load(stored(tmp_path, [0, 0, 1, 0]), "ds_x", "test")
    assert data.images[:, 0, 0, 0].tolist() == [2]
    assert data.class_names == ["a", "b"] and data.num_classes == 2


def test_an_empty_split_is_an_error_not_an_empty_dataset(tmp_path):
    with pytest.raises(DatasetError, match="no images in its test split"):
        uploads.load(stored(tmp_path, [0, 0, 0, 0]), "ds_x", "test")
