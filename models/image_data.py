"""An image dataset in memory, and the errors of loading one: what the built-ins
(models/datasets.py), uploaded files (models/dataset_uploads.py, models/uploads.py) and
idx files (models/idx.py) all make or raise. Below those modules, importing none of them,
so none imports another in a loop. torch loads when a dataset is made, not at import."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from errors import UserError

if TYPE_CHECKING:
    import numpy as np
    import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


class DatasetError(UserError):
    """A dataset cannot be loaded; the message says how to fix the call or the files."""


class UnknownDataset(DatasetError):  # noqa: N818 - reads as the condition it reports
    """The name is not a built-in dataset."""


class UnknownSplit(DatasetError):  # noqa: N818
    """The dataset has no such split."""


class ChecksumMismatch(DatasetError):  # noqa: N818
    """A file does not match the MD5 listed next to it."""


@dataclass
class ImageDataset:
    """images: uint8 (n, c, h, w); labels: int64 (n,) in [0, num_classes)."""

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    class_names: list[str]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(c, h, w) of every image."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 (n, c, h, w) -> uint8 (n, c, size, size), antialiased bilinear."""
    import torch
    import torch.nn.functional as F  # noqa: N812 - the conventional alias

    if tuple(images.shape[-2:]) == (size, size):
        return images
    out = torch.empty((*images.shape[:2], size, size), dtype=torch.uint8)
    # Chunks bound the float copy to a few MB whatever the dataset size.
    for start in range(0, images.shape[0], 2048):
        chunk = images[start : start + 2048].float()
        scaled = F.interpolate(chunk, size=(size, size), mode="bilinear", antialias=True)
        out[start : start + 2048] = scaled.round_().clamp_(0, 255).to(torch.uint8)
    return out


def from_numpy(
    name: str, split: str, images: np.ndarray, labels: np.ndarray, class_names: list[str]
) -> ImageDataset:
    """uint8 (n, c, h, w) and integer (n,) arrays -> ImageDataset."""
    import torch

    return ImageDataset(
        name=name,
        split=split,
        images=torch.from_numpy(images),
        labels=torch.from_numpy(labels.astype("int64")),
        num_classes=len(class_names),
        class_names=class_names,
    )
