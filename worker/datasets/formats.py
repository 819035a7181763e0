"""An upload of each format → the dataset's images as one uint8 (n, c, h, w) stream.

ImageFolder (zip, tar), Parquet and WebDataset hold encoded images, decoded in two passes
by worker/datasets/decode.py (headers first: an image over the pixel limit is refused
before anything is decoded); Parquet and WebDataset are read in worker/datasets/sharded.py.
npz and CIFAR batches are arrays already and are checked as such.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.datasets import DatasetError, load_npz
from worker.datasets import sharded
from worker.datasets.archive import Archive, common_root, is_archive
from worker.datasets.decode import (
    IMAGE_SUFFIXES,
    BadLayout,
    CorruptImages,
    Images,
    ImageTooLarge,
    NotAnImage,
    Options,
    Progress,
    decode,
)

CIFAR_RECORD = 1 + 3 * 32 * 32  # a label byte, then 32x32 planar RGB

__all__ = [
    "BadLayout",
    "CorruptImages",
    "ImageTooLarge",
    "Images",
    "NotAnImage",
    "Options",
    "read",
]


def read(fmt: str, path: Path, workdir: Path, options: Options, progress: Progress) -> Images:
    if fmt in ("zip", "tar"):
        return imagefolder(Archive(path, options.limits, kind=fmt), workdir, options, progress)
    if fmt == "npz":
        return npz(path, workdir, options)
    if fmt == "parquet":
        return sharded.parquet(path, workdir, options, progress)
    if fmt == "webdataset":
        return sharded.webdataset(path, workdir, options, progress)
    return cifar(path, workdir, options)


def _layout(archive: Archive) -> dict[str, str]:
    """member → class folder; refuses anything but class_name/image files."""
    names = [m.name for m in archive.members]
    if not names:
        raise BadLayout("the archive holds no files; put each class's images in its own folder")
    root = common_root(names)
    if root and not all(n.count("/") == 2 for n in names):
        root = ""
    classes = {}
    for name in names:
        parts = name[len(root) + 1 :].split("/") if root else name.split("/")
        if not name.lower().endswith(IMAGE_SUFFIXES):
            raise NotAnImage(
                f"{name} is not an image ({', '.join(s[1:] for s in IMAGE_SUFFIXES)}); an "
                "ImageFolder archive holds only class_name/image files"
            )
        if len(parts) != 2:
            raise BadLayout(
                f"{name} is not in a class folder: lay the archive out as class_name/image.png "
                "(one folder per class; one enclosing folder is fine)"
            )
        classes[name] = parts[0]
    return classes


def imagefolder(archive: Archive, workdir: Path, options: Options, progress: Progress) -> Images:
    return decode(
        archive.read, _layout(archive), workdir, options, progress, ignored=archive.ignored
    )


def _from_arrays(
    images: np.ndarray, labels: np.ndarray, classes: list[str], workdir: Path, options: Options
) -> Images:
    """uint8 (n, c, h, w) arrays (already checked) → :class:`Images`."""
    n, c, h, w = images.shape
    if h * w > options.max_pixels:
        raise ImageTooLarge(
            f"the images are {w}x{h} = {w * h} pixels, over the limit of {options.max_pixels}"
        )
    if n == 0:
        raise BadLayout("the file holds no images")
    raw = workdir / "images.raw"
    np.ascontiguousarray(images).tofile(raw)
    return Images(
        path=raw,
        count=n,
        shape=(c, h, w),
        labels=labels.astype(np.int64),
        classes=classes,
        original_sizes={f"{w}x{h}": n},
    )


def npz(path: Path, workdir: Path, options: Options) -> Images:
    """``images``, ``labels`` and optionally ``classes``, read without pickles after the
    zip checks (an .npz is a zip: its members' sizes bound what loading expands)."""
    archive = Archive(path, options.limits, kind="zip")
    try:
        data = load_npz(path)
    except DatasetError as exc:
        raise BadLayout(str(exc).replace(path.name, "the .npz")) from None
    images = _from_arrays(
        data.images.numpy(), data.labels.numpy(), data.class_names, workdir, options
    )
    images.ignored = archive.ignored
    return images


def cifar(path: Path, workdir: Path, options: Options) -> Images:
    """CIFAR-10 binary batches: one .bin, or a zip/tar of them (batches.meta.txt, when
    there, names the classes one per line; other files are listed as ignored)."""
    if is_archive(path):
        archive = Archive(path, options.limits)
        files = dict(archive.read(m.name for m in archive.members))
        ignored = archive.ignored
    else:
        files, ignored = {"upload.bin": path.read_bytes()}, []
    batches = sorted(name for name in files if name.endswith(".bin"))
    if not batches:
        raise BadLayout("no .bin batch in the upload; CIFAR batches are *.bin files")
    meta = [name for name in files if name.rsplit("/", 1)[-1] == "batches.meta.txt"]
    ignored += sorted(set(files) - set(batches) - set(meta))
    records = []
    for name in batches:
        if len(files[name]) % CIFAR_RECORD:
            raise BadLayout(
                f"{name} is {len(files[name])} bytes, not a whole number of CIFAR-10 records "
                f"({CIFAR_RECORD} bytes: a label byte and 3072 bytes of 32x32 RGB)"
            )
        records.append(np.frombuffer(files[name], dtype=np.uint8).reshape(-1, CIFAR_RECORD))
    table = np.concatenate(records)
    labels = table[:, 0].astype(np.int64)
    lines = files[meta[0]].decode("utf-8", "replace").splitlines() if meta else []
    names = [line.strip() for line in lines if line.strip()]
    classes = names or [str(i) for i in range(int(labels.max()) + 1)]
    if int(labels.max()) >= len(classes):
        raise BadLayout(
            f"label {int(labels.max())} has no name: batches.meta.txt names {len(classes)} classes"
        )
    images = table[:, 1:].reshape(-1, 3, 32, 32)
    result = _from_arrays(images, labels, classes, workdir, options)
    result.ignored = ignored
    return result
