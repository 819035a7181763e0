"""Uploaded datasets as the service stores them once validated: one ``data.npz`` holding

    images   uint8 (n, c, h, w)
    labels   int64 (n,) in [0, k)
    classes  k class names (unicode strings, no pickle)
    split    uint8 (n,): 0 train, 1 test, made once by :func:`split_mask`

so every job that names the dataset sees the same images and the same split.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from models.datasets import _stratified_split
from models.image_data import DatasetError, ImageDataset, UnknownSplit, from_numpy, resize

if TYPE_CHECKING:
    import numpy as np

SPLITS = ("train", "test")


def split_mask(labels: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """uint8 (n,): 1 for the test images, per class ``test_fraction`` of a seeded shuffle
    (rounded; a class of one image stays in train)."""
    import numpy as np

    mask = np.zeros(len(labels), dtype=np.uint8)
    if len(labels):
        mask[_stratified_split(labels, "test", train_fraction=1 - test_fraction, seed=seed)] = 1
    return mask


def load(path: str | Path, name: str, split: str, image_size: int | None = None) -> ImageDataset:
    """The ``split`` of the stored dataset at ``path`` (its id is ``name``), resized to
    ``image_size`` when given."""
    import numpy as np

    if split not in SPLITS:
        raise UnknownSplit(f"an uploaded dataset has splits {list(SPLITS)}, not {split!r}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keep = np.flatnonzero(archive["split"] == SPLITS.index(split))
            images = archive["images"][keep]
            labels = archive["labels"][keep]
            classes = [str(c) for c in archive["classes"].tolist()]
    except (OSError, KeyError, ValueError) as error:
        raise DatasetError(f"{name} is not a stored dataset: {error}") from None
    if len(keep) == 0:
        raise DatasetError(f"dataset {name} has no images in its {split} split")
    data = from_numpy(name, split, images, labels, classes)
    if image_size is not None:
        data.images = resize(data.images, image_size)
    return data
