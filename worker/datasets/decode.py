"""Encoded images of an upload → the dataset's images as one uint8 (n, c, h, w) stream,
what every format of encoded images shares (ImageFolder, Parquet, WebDataset).

Two passes over the images, one in memory at a time:

1. headers: every image's size and mode, read without decoding its pixels, so an image
   over the pixel limit is refused before anything is decoded (a 30000×30000 PNG is a
   few kB on disk and 2.7 GB once decoded);
2. decode: each image into the dataset's one mode (grayscale when all are, else RGB) and
   one size (theirs when all agree; else the median shorter side, capped), appended raw
   to a file on disk.

Files that cannot be decoded are listed; they refuse the dataset unless the user asked
to skip them.
"""

from __future__ import annotations

import io
import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from worker.datasets.archive import Limits, Rejected

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
GRAY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "F"})
MAX_LISTED = 10  # corrupt files named in an error message
SIZES_KEPT = 50  # distinct original sizes kept in the summary

Progress = Callable[[int, int], None]
Reader = Callable[[Iterable[str]], Iterator[tuple[str, bytes]]]


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


def decode(
    read: Reader,
    folder_of: dict[str, str],
    workdir: Path,
    options: Options,
    progress: Progress,
    *,
    classes: list[str] | None = None,
    ignored: list[str] | None = None,
) -> Images:
    """Encoded images → :class:`Images`, in the two passes above. ``read(names)`` gives
    (name, bytes) of the named images (and may be called twice); ``folder_of`` maps each
    image's name to its class; ``classes`` orders the classes (sorted names when None)."""
    total = 2 * len(folder_of)
    corrupt: dict[str, str] = {}
    headers: dict[str, tuple[int, int, str]] = {}
    for done, (name, data) in enumerate(read(list(folder_of)), start=1):
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
    found = {folder_of[name] for name in headers}
    classes = [c for c in classes if c in found] if classes is not None else sorted(found)
    index = {name: i for i, name in enumerate(classes)}
    raw = workdir / "images.raw"
    labels: list[int] = []
    shape: tuple[int, ...] = ()
    with raw.open("wb") as out:
        for done, (name, data) in enumerate(read(list(headers)), start=len(folder_of) + 1):
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
        ignored=ignored or [],
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
