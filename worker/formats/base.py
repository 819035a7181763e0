"""What every output format shares: the manifest, the writer's contract, the reader's.

A writer takes shards as they come and keeps none of them (generating 60,000 images holds
one shard in memory; an npz or zip is streamed to a file on disk); ``finish()`` uploads
what is still local and returns ``[(name, object)]``: the format's files, then the
manifest listing every image. A reader gives the first ``count`` images of a job's output
back, in the order they were made, as ``(images uint8 (b, c, h, w), labels int64 (b,))``
batches of at most ``batch`` images.
"""

from __future__ import annotations

import csv
import hashlib
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.storage import Storage, StoredObject

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ["index", "file", "member", "label", "class_name", "sha256", "size"]

Batches = Iterator[tuple[np.ndarray, np.ndarray]]


class Manifest:
    """``manifest.csv``: one row per image, in generation order, written as images come.

    file is the artifact holding the image; member is where inside it (the zip member of
    an imagefolder, ``images[i]`` of an npz, empty for a png); sha256 and size are those
    of the image's own bytes: the PNG (png, imagefolder) or the raw uint8 (c, h, w) row
    of the npz's images array.
    """

    def __init__(self, path: Path, class_names: list[str]) -> None:
        self.path = path
        self.class_names = class_names
        self.file = path.open("w", newline="")
        self.csv = csv.writer(self.file)
        self.csv.writerow(MANIFEST_COLUMNS)

    def add(self, index: int, file: str, member: str, label: int, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()
        self.csv.writerow([index, file, member, label, self.class_names[label], digest, len(data)])

    def upload(self, storage: Storage, key: str) -> StoredObject:
        self.file.close()
        return storage.put_file(key, self.path, "text/csv")


@dataclass(frozen=True)
class Target:
    """Where a writer puts a job's images: ``{prefix}/...`` in ``storage``, via files in
    ``workdir``, for images of ``shape`` (c, h, w) named by ``class_names``."""

    storage: Storage
    prefix: str
    workdir: Path
    count: int
    shape: tuple[int, int, int]
    class_names: list[str]


@dataclass(frozen=True)
class Source:
    """A finished job's images to read back: the job's storage ``prefix``, a ``workdir``
    for downloads, its ``class_names``; at most ``count`` images (all when None), in
    batches of ``batch``."""

    storage: Storage
    prefix: str
    workdir: Path
    class_names: list[str]
    count: int | None
    batch: int


class OutputWriter(ABC):
    """Base: ``add(images, labels)`` per shard, then ``finish() -> [(name, object)]``."""

    location: str
    """Where the images are, for the job's result: "images/*.png", "images.npz", ..."""

    def __init__(self, target: Target) -> None:
        self.storage = target.storage
        self.prefix = target.prefix
        self.workdir = target.workdir
        self.class_names = target.class_names
        self.count = 0
        self.manifest = Manifest(target.workdir / MANIFEST, target.class_names)

    @abstractmethod
    def add(self, images: np.ndarray, labels: np.ndarray) -> None: ...

    @abstractmethod
    def _close(self) -> list[tuple[str, StoredObject]]:
        """Upload what is still local; returns the format's artifacts."""

    def finish(self) -> list[tuple[str, StoredObject]]:
        objects = self._close()
        manifest = self.manifest.upload(self.storage, f"{self.prefix}/{MANIFEST}")
        return [*objects, (MANIFEST, manifest)]


class ZipWriter(OutputWriter):
    """A format whose images go into one zip archive, ``location``, written on disk as
    they come and uploaded at the end. Members are stored, not deflated: PNG and raw
    pixels gain little from it, and it would cost CPU on every image."""

    content_type: str | None = "application/zip"

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.path = target.workdir / self.location
        self.zip = zipfile.ZipFile(self.path, "w", compression=zipfile.ZIP_STORED, allowZip64=True)

    def _complete(self) -> None:
        """Write what the archive still lacks before it is closed."""

    def _close(self) -> list[tuple[str, StoredObject]]:
        self._complete()
        self.zip.close()
        key = f"{self.prefix}/{self.location}"
        return [(self.location, self.storage.put_file(key, self.path, self.content_type))]


def in_batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
