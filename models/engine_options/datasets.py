"""The built-in datasets' names, splits and default image sizes, declared once (torch-free):
``core/`` checks dataset references against them at submit, ``models.datasets`` loads them."""

from __future__ import annotations

BUILTIN_SPLITS: dict[str, tuple[str, ...]] = {
    "digits": ("train", "test"),
    "shapes": ("train", "test"),
    "mnist": ("train", "test"),
    "fashion_mnist": ("train", "test"),
    "cifar10": ("train", "test"),
    "mnist_t10k": ("train", "test"),
}
"""Every built-in dataset name and the splits it has."""

DEFAULT_IMAGE_SIZE: dict[str, int] = {
    "digits": 16,
    "shapes": 16,
    "mnist": 28,
    "fashion_mnist": 28,
    "cifar10": 32,
    "mnist_t10k": 28,
}
"""The image size a train job gets when its config names none: the dataset's native size,
or 16 for the 8x8 digits, which the UNet needs at least."""
