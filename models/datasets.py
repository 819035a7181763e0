"""Datasets: a name becomes uint8 images and int64 labels.

Built-ins (:data:`BUILTIN_SPLITS`)::

    digits         scikit-learn's bundled 8x8 digits, 1 channel; works offline
    shapes         procedurally drawn circles, squares, ... 3 channels; for tests
    mnist          idx files under ``root`` (torchvision downloads them when installed)
    fashion_mnist  same layout as mnist
    mnist_t10k     the mnist t10k files alone, split 80/20 for offline experiments
    cifar10        the binary batches under ``root``, or torchvision's download

Uploads: :func:`load_npz` and :func:`load_imagefolder_zip`. Nothing heavy loads at import,
so :data:`BUILTIN_SPLITS` and :func:`parse_reference` are cheap; torch, numpy and PIL load
when a dataset does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

# The dataset type and its errors live below this module and the loaders beside it
# (models/dataset_uploads.py, models/idx.py); they are part of this module's interface.
from models import idx
from models.dataset_uploads import load_imagefolder_zip, load_npz
from models.engine_options.datasets import BUILTIN_SPLITS  # declared once, torch-free
from models.image_data import (
    ChecksumMismatch,
    DatasetError,
    ImageDataset,
    UnknownDataset,
    UnknownSplit,
    from_numpy,
    resize,
)

__all__ = [
    "BUILTIN_SPLITS",
    "ChecksumMismatch",
    "DatasetError",
    "ImageDataset",
    "UnknownDataset",
    "UnknownSplit",
    "check",
    "load",
    "load_imagefolder_zip",
    "load_npz",
    "names",
    "parse_reference",
    "resize",
]

if TYPE_CHECKING:
    import numpy as np
    import torch


DEFAULT_ROOT = Path("~/.cache/synthgen/datasets")  # mnist, fashion_mnist, cifar10 without root

SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "ring")
SHAPES_DEFAULT_COUNT = {"train": 2000, "test": 500}
_SHAPES_SEED = {"train": 0, "test": 1}
_SPLIT_SEED = 0  # the stratified train/test split of digits and mnist_t10k
_TRAIN_FRACTION = 0.8


# --------------------------------------------------------------------------- names


def names() -> list[str]:
    """The built-in dataset names, sorted."""
    return sorted(BUILTIN_SPLITS)


def check(name: str, split: str) -> None:
    """Raise :class:`UnknownDataset` / :class:`UnknownSplit` unless ``name:split`` exists."""
    if name not in BUILTIN_SPLITS:
        raise UnknownDataset(f"unknown dataset {name!r}; built-in datasets are {names()}")
    if split not in BUILTIN_SPLITS[name]:
        raise UnknownSplit(
            f"dataset {name!r} has no split {split!r}; its splits are {list(BUILTIN_SPLITS[name])}"
        )


def parse_reference(reference: str) -> tuple[str, str]:
    """``"digits:test"`` -> ``("digits", "test")``; a bare name means its held-out split."""
    name, _, split = reference.partition(":")
    split = split or "test"
    check(name, split)
    return name, split


def load(
    name: str,
    split: str = "train",
    image_size: int | None = None,
    root: str | Path | None = None,
    *,
    count: int | None = None,
) -> ImageDataset:
    """Load a built-in dataset.

    image_size: resize every image to ``image_size x image_size`` (antialiased bilinear;
        ``shapes`` draws at that size directly). None keeps the native size.
    root: directory holding the files of mnist, fashion_mnist, mnist_t10k (required) and
        cifar10; defaults to :data:`DEFAULT_ROOT`.
    count: for ``shapes`` how many images to draw; for the others keep the first ``count``.
    """
    check(name, split)
    if image_size is not None and image_size < 1:
        raise DatasetError(f"image_size must be a positive integer, got {image_size}")
    if count is not None and count < 1:
        raise DatasetError(f"count must be a positive integer, got {count}")
    if name == "shapes":
        return _shapes(split, image_size or 32, count or SHAPES_DEFAULT_COUNT[split])
    if name == "digits":
        data = _digits(split)
    elif name == "mnist_t10k":
        data = _mnist_t10k(split, root)
    elif name == "cifar10":
        data = _cifar10(split, Path(root or DEFAULT_ROOT).expanduser())
    else:
        data = _idx_dataset(name, split, Path(root or DEFAULT_ROOT).expanduser())
    if count is not None:
        data.images, data.labels = data.images[:count], data.labels[:count]
    if image_size is not None:
        data.images = resize(data.images, image_size)
    return data


def _stratified_split(
    labels: np.ndarray,
    split: str,
    *,
    train_fraction: float = _TRAIN_FRACTION,
    seed: int = _SPLIT_SEED,
) -> np.ndarray:
    """Sorted indices of ``split``: per class, a seeded shuffle's first ``train_fraction``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rng.shuffle(members)
        cut = round(len(members) * train_fraction)
        chosen.append(members[:cut] if split == "train" else members[cut:])
    return np.sort(np.concatenate(chosen))


# --------------------------------------------------------------------------- digits


def _digits(split: str) -> ImageDataset:
    import numpy as np
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel values are 0..16 counts of set bits; scale them to the full uint8 range.
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    labels = bunch.target
    keep = _stratified_split(labels, split)
    return from_numpy("digits", split, images[keep], labels[keep], [str(d) for d in range(10)])


# --------------------------------------------------------------------------- shapes


def _shapes(split: str, size: int, count: int) -> ImageDataset:
    """Draw ``count`` labelled shapes at ``size x size``, 4x supersampled for soft edges.

    Geometry is in normalised coordinates ([-1, 1] across the image), so the same seed
    gives the same scenes at every size.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    generator = torch.Generator().manual_seed(_SHAPES_SEED[split])
    k = len(SHAPE_CLASSES)
    labels = (torch.arange(count) % k)[torch.randperm(count, generator=generator)]
    radius = 0.35 + 0.35 * torch.rand(count, generator=generator)
    centre = (torch.rand(count, 2, generator=generator) * 2 - 1) * (1 - radius[:, None])
    colour = 0.3 + 0.7 * torch.rand(count, 3, generator=generator)

    fine = size * 4
    axis = (torch.arange(fine, dtype=torch.float32) + 0.5) / fine * 2 - 1
    images = torch.empty((count, 3, size, size), dtype=torch.uint8)
    for start in range(0, count, 256):  # bounds the supersampled masks' memory
        part = slice(start, min(count, start + 256))
        r = radius[part, None, None]
        dx = (axis[None, None, :] - centre[part, 0, None, None]).abs()
        dy = axis[None, :, None] - centre[part, 1, None, None]
        masks = _shape_masks(dx, dy, r)
        mask = masks.gather(0, labels[part][None, :, None, None].expand(1, -1, fine, fine))[0]
        coverage = F.avg_pool2d(mask.float()[:, None], 4)
        pixels = coverage * colour[part, :, None, None] * 255
        images[part] = pixels.round_().to(torch.uint8)
    return ImageDataset(
        name="shapes",
        split=split,
        images=images,
        labels=labels.to(torch.int64),
        num_classes=k,
        class_names=list(SHAPE_CLASSES),
    )


def _shape_masks(dx: torch.Tensor, dy: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """bool (k, b, h, w): every class's mask; dx = |x - cx|, dy = y - cy, r (b, 1, 1)."""
    import torch

    ady = dy.abs()
    dist2 = dx**2 + dy**2
    arm = r / 3
    return torch.stack(
        [
            dist2 <= r**2,  # circle
            torch.maximum(dx, ady) <= r * 0.8,  # square
            (dx * 1.7 <= dy + r) & (dy <= r * 0.7),  # triangle, apex up
            ((dx <= arm) & (ady <= r)) | ((ady <= arm) & (dx <= r)),  # cross
            (dist2 <= r**2) & (dist2 >= (0.55 * r) ** 2),  # ring
        ]
    )


# --------------------------------------------------------------------------- mnist


_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_FASHION_CLASSES = "T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot"
_IDX_CLASSES = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": _FASHION_CLASSES.split("|"),
}
_TORCHVISION_DIR = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def _idx_dataset(name: str, split: str, root: Path) -> ImageDataset:
    images, labels = _read_idx_pair(name, split, root, download=True)
    return from_numpy(name, split, images, labels, _IDX_CLASSES[name])


def _mnist_t10k(split: str, root: str | Path | None) -> ImageDataset:
    if root is None:
        raise DatasetError(
            "mnist_t10k needs root=<directory holding t10k-images-idx3-ubyte.gz and "
            "t10k-labels-idx1-ubyte.gz>"
        )
    images, labels = _read_idx_pair("mnist", "test", Path(root), download=False)
    keep = _stratified_split(labels, split)
    return from_numpy("mnist_t10k", split, images[keep], labels[keep], _IDX_CLASSES["mnist"])


def _read_idx_pair(
    name: str, split: str, root: Path, *, download: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 (n, 1, 28, 28), uint8 (n,)) from the idx files of ``split``."""
    stems = _IDX_FILES[split]
    raw = root / _TORCHVISION_DIR[name] / "raw"
    files = [idx.find(stem, root, raw) for stem in stems]
    if None in files and download and _torchvision_download(name, split, root):
        files = [idx.find(stem, root, raw) for stem in stems]
    missing = [stem for stem, path in zip(stems, files, strict=True) if path is None]
    if missing:
        alternative = ", or install torchvision to download them" if download else ""
        raise DatasetError(
            f"{name} {split} files not found under {root}: put {' and '.join(missing)} "
            f"(optionally .gz) there{alternative}"
        )
    images_path, labels_path = (path for path in files if path is not None)
    images, labels = idx.read(images_path), idx.read(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DatasetError(f"{images_path} and {labels_path} do not form an image/label pair")
    return images[:, None], labels


def _torchvision_download(name: str, split: str, root: Path) -> bool:
    """Download with torchvision into ``root``; False when torchvision is not installed."""
    try:
        import torchvision.datasets as tv
    except ImportError:
        return False
    dataset_class = tv.MNIST if name == "mnist" else tv.FashionMNIST
    try:
        dataset_class(str(root), train=split == "train", download=True)
    except (OSError, RuntimeError) as exc:  # offline, mirror down, disk full, bad archive
        raise _download_failed(name, root, "its idx files (optionally .gz)", exc) from exc
    return True


def _download_failed(name: str, root: Path, files: str, exc: Exception) -> DatasetError:
    """A download error as something the user can act on: place the files themselves."""
    return DatasetError(
        f"{name} is not under {root} and downloading it failed ({type(exc).__name__}: "
        f"{exc}); put {files} under {root} yourself, or set SYNTHGEN_DATA_ROOT to where "
        "they are"
    )


# --------------------------------------------------------------------------- cifar10


_CIFAR10_CLASSES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip


def _cifar10(split: str, root: Path) -> ImageDataset:
    """The binary release (``cifar-10-batches-bin``) when present, else torchvision's."""
    import numpy as np

    binary = root / "cifar-10-batches-bin"
    stems = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    if all((binary / f"{stem}.bin").is_file() for stem in stems):
        # Each record: 1 label byte then 3072 bytes of planar RGB 32x32.
        records = np.concatenate(
            [
                np.fromfile(binary / f"{stem}.bin", dtype=np.uint8).reshape(-1, 3073)
                for stem in stems
            ]
        )
        images, labels = records[:, 1:].reshape(-1, 3, 32, 32).copy(), records[:, 0].copy()
        return from_numpy("cifar10", split, images, labels, list(_CIFAR10_CLASSES))
    try:
        import torchvision.datasets as tv
    except ImportError:
        raise DatasetError(
            f"cifar10 files not found: put the binary release's cifar-10-batches-bin/ "
            f"under {root}, or install torchvision to download it"
        ) from None
    # torchvision checks the archive's MD5 before it reads the batches it extracted.
    try:
        dataset = tv.CIFAR10(str(root), train=split == "train", download=True)
    except (OSError, RuntimeError) as exc:
        raise _download_failed(
            "cifar10", root, "the binary release's cifar-10-batches-bin/", exc
        ) from exc
    images = np.ascontiguousarray(dataset.data.transpose(0, 3, 1, 2))
    return from_numpy("cifar10", split, images, np.asarray(dataset.targets), list(dataset.classes))
