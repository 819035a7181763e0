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
from worker.lineage import sha256_file

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
        self.counts = [0] * len(class_names)
        """Images per class, in class order (the dataset card's counts)."""
        self.sha256 = ""

    def add(self, index: int, file: str, member: str, label: int, data: bytes) -> None:
        digest = hashlib.sha256(data).hexdigest()
        self.csv.writerow([index, file, member, label, self.class_names[label], digest, len(data)])
        self.counts[label] += 1

    def upload(self, storage: Storage, key: str) -> StoredObject:
        self.file.close()
        self.sha256 = sha256_file(self.path)
        return storage.put_file(key, self.path, "text/csv")


DEFAULT_SHARD_BYTES = 256 * 2**20
DEFAULT_SHARD_SAMPLES = 10_000


@dataclass(frozen=True)
class Target:
    """Where a writer puts a job's images: ``{prefix}/...`` in ``storage``, via files in
    ``workdir``, for images of ``shape`` (c, h, w) named by ``class_names``.

    model_version is the id of the version that made them (a column of the sharded
    formats); shard_bytes and shard_samples bound one shard of those formats (parquet,
    webdataset): a shard is closed, uploaded and deleted once either is reached, so a job
    holds one shard on disk."""

    storage: Storage
    prefix: str
    workdir: Path
    count: int
    shape: tuple[int, int, int]
    class_names: list[str]
    model_version: str | None = None
    shard_bytes: int = DEFAULT_SHARD_BYTES
    shard_samples: int = DEFAULT_SHARD_SAMPLES


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
    """Base: ``add(images, labels, seeds)`` per shard, then ``finish() -> [(name, object)]``.

    seeds, when given, is each image's sampling seed (generate: its shard's seed, with
    which the engine drew the shard's images in order; txt2img: the image's own), kept by
    the formats that hold per-image columns."""

    location: str
    """Where the images are, for the job's result: "images/*.png", "images.npz", ..."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.storage = target.storage
        self.prefix = target.prefix
        self.workdir = target.workdir
        self.class_names = target.class_names
        self.count = 0
        self.manifest = Manifest(target.workdir / MANIFEST, target.class_names)
        self.sha256: dict[str, str] = {}
        """SHA-256 of the format's files that are not one image each (archives, shards,
        the manifest), taken from the local file before upload (croissant.json lists
        them)."""

    @abstractmethod
    def add(
        self, images: np.ndarray, labels: np.ndarray, seeds: np.ndarray | None = None
    ) -> None: ...

    @abstractmethod
    def _close(self) -> list[tuple[str, StoredObject]]:
        """Upload what is still local; returns the format's artifacts."""

    def finish(self) -> list[tuple[str, StoredObject]]:
        objects = self._close()
        manifest = self.manifest.upload(self.storage, f"{self.prefix}/{MANIFEST}")
        self.sha256[MANIFEST] = self.manifest.sha256
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
        self.sha256[self.location] = sha256_file(self.path)
        return [(self.location, self.storage.put_file(key, self.path, self.content_type))]


class ShardedWriter(OutputWriter):
    """A format written as numbered shard files, ``{folder}/train-{n}{suffix}``: a shard
    is closed when it holds ``target.shard_samples`` images or ``target.shard_bytes`` of
    encoded images, then uploaded and deleted, so the disk holds one shard at a time.
    ``location`` is the shards' brace pattern ("webdataset/train-{000000..000003}.tar"),
    known once the last shard is closed."""

    folder: str
    suffix: str
    digits: int
    content_type: str
    default_location: str

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self.location = self.default_location
        self.shards: list[tuple[str, StoredObject]] = []
        self.in_shard = 0  # images in the open shard (0: none is open)
        self.shard_bytes = 0  # their encoded bytes

    def shard_name(self, number: int) -> str:
        return f"{self.folder}/train-{number:0{self.digits}d}{self.suffix}"

    @property
    def current(self) -> str:
        return self.shard_name(len(self.shards))

    def _local(self) -> Path:
        return self.workdir / self.current.replace("/", "-")

    @abstractmethod
    def _open_shard(self, path: Path) -> None: ...

    @abstractmethod
    def _close_shard(self) -> None:
        """Finish the open shard's file (it is uploaded next)."""

    def _before_sample(self) -> None:
        if self.in_shard == 0:
            self._open_shard(self._local())

    def _after_sample(self, encoded: int) -> None:
        self.in_shard += 1
        self.shard_bytes += encoded
        full = self.in_shard >= self.target.shard_samples
        if full or self.shard_bytes >= self.target.shard_bytes:
            self._rotate()

    def _rotate(self) -> None:
        if self.in_shard == 0:
            return
        self._close_shard()
        path, name = self._local(), self.current
        self.sha256[name] = sha256_file(path)
        self.shards.append(
            (name, self.storage.put_file(f"{self.prefix}/{name}", path, self.content_type))
        )
        path.unlink()
        self.in_shard = self.shard_bytes = 0

    def _close(self) -> list[tuple[str, StoredObject]]:
        self._rotate()
        last = len(self.shards) - 1
        if last > 0:
            first = f"{0:0{self.digits}d}"
            self.location = self.shard_name(0).replace(
                first, f"{{{first}..{last:0{self.digits}d}}}", 1
            )
        elif self.shards:
            self.location = self.shards[0][0]
        return list(self.shards)


def shard_names(source: Source, folder: str, suffix: str) -> list[str]:
    """The stored shards of a sharded format, in order (names from the job's folder)."""
    start = f"{source.prefix}/{folder}/"
    keys = sorted(o.key for o in source.storage.list(start) if o.key.endswith(suffix))
    return [k[len(source.prefix) + 1 :] for k in keys]


def downloaded_shards(source: Source, folder: str, suffix: str) -> list[Path]:
    """The stored shards of a sharded format, in order, downloaded into the workdir."""
    paths = []
    for name in shard_names(source, folder, suffix):
        path = source.workdir / f"source-{name.replace('/', '-')}"
        source.storage.get_file(f"{source.prefix}/{name}", path)
        paths.append(path)
    return paths


def rebatched(parts: Batches, batch: int) -> Batches:
    """The images of ``parts`` (batches of any size, such as a shard's rows) in batches of
    exactly ``batch`` (the last one shorter)."""
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    held = 0
    for part_images, part_labels in parts:
        images.append(part_images)
        labels.append(part_labels)
        held += len(part_labels)
        while held >= batch:
            all_images, all_labels = np.concatenate(images), np.concatenate(labels)
            yield all_images[:batch], all_labels[:batch]
            images, labels, held = [all_images[batch:]], [all_labels[batch:]], held - batch
    if held:
        yield np.concatenate(images), np.concatenate(labels)


def in_batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
