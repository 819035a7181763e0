"""An upload of each format → the dataset's images as one uint8 (n, c, h, w) stream.

ImageFolder (zip, tar) takes two passes over the archive, one file in memory at a time:

1. headers: every image's size and mode, read without decoding its pixels, so an image
   over the pixel limit is refused before anything is decoded (a 30000×30000 PNG is a
   few kB on disk and 2.7 GB once decoded);
2. decode: each image into the dataset's one mode (grayscale when all are, else RGB) and
   one size (theirs when all agree; else the median shorter side, capped), appended raw
   to a file on disk.

Files that cannot be decoded are listed; they refuse the dataset unless the user asked
to skip them. npz and CIFAR batches are arrays already and are checked as such.
"""

from __future__ import annotations

import io
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from models.datasets import DatasetError, load_npz
from worker.datasets.archive import Archive, Limits, Rejected, common_root, is_archive

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
CIFAR_RECORD = 1 + 3 * 32 * 32  # a label byte, then 32x32 planar RGB
MAX_LISTED = 10  # corrupt files named in an error message
SIZES_KEPT = 50  # distinct original sizes kept in the summary

Progress = Callable[[int, int], None]


class NotAnImage(Rejected):
    pass


class ImageTooLarge(Rejected):
    pass


class CorruptImages(Rejected):
    pass


class BadLayout(Rejected):
    """The files are not laid out as the declared format says."""


@dataclass
class Images:
    """What a format reader produced: ``count`` images of ``shape`` (c, h, w), raw uint8
    in ``path`` one after the other, with their labels."""

    path: Path
    count: int
    shape: tuple[int, int, int]
    labels: np.ndarray
    classes: list[str]
    corrupt: list[dict[str, str]] = field(default_factory=list)
    original_sizes: dict[str, int] = field(default_factory=dict)
    resized: bool = False
    ignored: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Options:
    limits: Limits
    max_pixels: int
    max_side: int
    skip_corrupt: bool


def read(fmt: str, path: Path, workdir: Path, options: Options, progress: Progress) -> Images:
    if fmt in ("zip", "tar"):
        return imagefolder(Archive(path, options.limits, kind=fmt), workdir, options, progress)
    if fmt == "npz":
        return npz(path, workdir, options)
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
    folder_of = _layout(archive)
    total = 2 * len(folder_of)
    corrupt: dict[str, str] = {}
    headers: dict[str, tuple[int, int, str]] = {}
    for done, (name, data) in enumerate(archive.read(folder_of), start=1):
        try:
            with Image.open(io.BytesIO(data)) as picture:
                width, height = picture.size
                headers[name] = (width, height, picture.mode)
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge(f"{name}: {exc}; the limit is {options.max_pixels}") from None
        except (OSError, SyntaxError, ValueError) as exc:
            corrupt[name] = str(exc) or type(exc).__name__
            continue
        if width * height > options.max_pixels:
            raise ImageTooLarge(
                f"{name} is {width}x{height} = {width * height} pixels, over the limit of "
                f"{options.max_pixels} pixels per image"
            )
        progress(done, total)
    if not headers:
        _refuse_corrupt(corrupt, always=True)
    sizes = Counter(f"{w}x{h}" for w, h, _ in headers.values())
    mode = "L" if all(m in GRAY_MODES for _, _, m in headers.values()) else "RGB"
    target: tuple[int, int] | None = None
    if len(sizes) > 1:
        side = min(
            int(statistics.median(min(w, h) for w, h, _ in headers.values())), options.max_side
        )
        target = (side, side)
    classes = sorted({folder_of[name] for name in headers})
    index = {name: i for i, name in enumerate(classes)}
    raw = workdir / "images.raw"
    labels: list[int] = []
    shape: tuple[int, ...] = ()
    with raw.open("wb") as out:
        for done, (name, data) in enumerate(archive.read(headers), start=len(folder_of) + 1):
            try:
                with Image.open(io.BytesIO(data)) as picture:
                    picture.load()
                    converted = picture.convert(mode)
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
                corrupt[name] = str(exc) or type(exc).__name__
                continue
            if target is not None:
                converted = converted.resize(target, Image.Resampling.BILINEAR)
            pixels = np.asarray(converted, dtype=np.uint8)
            pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
            shape = pixels.shape
            out.write(np.ascontiguousarray(pixels).tobytes())
            labels.append(index[folder_of[name]])
            progress(done, total)
    if (corrupt and not options.skip_corrupt) or not labels:
        _refuse_corrupt(corrupt, always=not labels)
    counts = Counter(labels)
    # A class whose every image was corrupt (and skipped) has no label: renumber.
    present = sorted(counts)
    renumber = np.full(len(classes), -1, dtype=np.int64)
    renumber[present] = np.arange(len(present))
    return Images(
        path=raw,
        count=len(labels),
        shape=(int(shape[0]), int(shape[1]), int(shape[2])),
        labels=renumber[np.asarray(labels, dtype=np.int64)],
        classes=[classes[i] for i in present],
        corrupt=[{"file": f, "reason": r} for f, r in sorted(corrupt.items())],
        original_sizes=dict(sizes.most_common(SIZES_KEPT)),
        resized=target is not None,
        ignored=archive.ignored,
    )


def _refuse_corrupt(corrupt: dict[str, str], *, always: bool) -> None:
    listed = "; ".join(f"{f} ({r})" for f, r in sorted(corrupt.items())[:MAX_LISTED])
    more = f" and {len(corrupt) - MAX_LISTED} more" if len(corrupt) > MAX_LISTED else ""
    if always:
        raise CorruptImages(f"no image in the archive could be decoded: {listed}{more}")
    raise CorruptImages(
        f"{len(corrupt)} files are not readable images: {listed}{more}; fix or remove them, "
        "or create the dataset with skip_corrupt: true to leave them out"
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
