"""The ``webdataset`` format: tar shards ``webdataset/train-000000.tar``, ... of at most
``shard_samples`` samples (and about ``shard_bytes``), for streaming with the
``webdataset`` library from the shards' presigned URLs.

A sample is three members under one key, the image's index (``000042``): ``000042.png``,
``000042.cls`` (the label as decimal text, what ``wds`` decodes to an int) and
``000042.json`` (index, label, class_name, seed, model_version). The job's result gives
the shards' brace pattern ("webdataset/train-{000000..000005}.tar"), the form ``wds``
expands. The tars are written with the standard library: the layout is plain tar, and
fixed member headers (mtime 0, no owner) make a shard's bytes depend only on its images.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from worker.formats.base import (
    MANIFEST,
    Batches,
    ShardedWriter,
    Source,
    downloaded_shards,
    rebatched,
)
from worker.images import decode_png, png_bytes

FOLDER = "webdataset"  # not shards/: a generate job keeps its sampled shards there
SUFFIX = ".tar"
LOCATION = f"{FOLDER}/train-*{SUFFIX}"
CONTENT_TYPE = "application/x-tar"


def _member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


class Writer(ShardedWriter):
    folder = FOLDER
    suffix = SUFFIX
    digits = 6
    content_type = CONTENT_TYPE
    default_location = LOCATION

    def __init__(self, target: Any) -> None:
        super().__init__(target)
        self.tar: tarfile.TarFile | None = None

    def _open_shard(self, path: Path) -> None:
        self.tar = tarfile.open(path, "w", format=tarfile.USTAR_FORMAT)

    def add(self, images: np.ndarray, labels: np.ndarray, seeds: np.ndarray | None = None) -> None:
        for i in range(images.shape[0]):
            self._before_sample()
            assert self.tar is not None  # noqa: S101 - opened by _before_sample
            key, label, data = f"{self.count:06d}", int(labels[i]), png_bytes(images[i])
            meta = {
                "index": self.count,
                "label": label,
                "class_name": self.class_names[label],
                "seed": None if seeds is None else int(seeds[i]),
                "model_version": self.target.model_version,
            }
            _member(self.tar, f"{key}.png", data)
            _member(self.tar, f"{key}.cls", str(label).encode())
            _member(self.tar, f"{key}.json", json.dumps(meta).encode())
            self.manifest.add(self.count, self.current, f"{key}.png", label, data)
            self.count += 1
            self._after_sample(len(data))

    def _close_shard(self) -> None:
        assert self.tar is not None  # noqa: S101 - a shard is open while it has samples
        self.tar.close()
        self.tar = None


def samples(path: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(key, {extension: bytes}) of a tar shard, a sample's members being adjacent (the
    WebDataset convention: the key is the name up to the first dot of its last part)."""
    key: str | None = None
    sample: dict[str, bytes] = {}
    with tarfile.open(path, "r:*") as tar:
        for info in tar:
            if not info.isfile():
                continue
            folder, _, base = info.name.rpartition("/")
            stem, dot, ext = base.partition(".")
            if not dot:
                continue
            name = f"{folder}/{stem}" if folder else stem
            if name != key:
                if key is not None:
                    yield key, sample
                key, sample = name, {}
            handle = tar.extractfile(info)
            assert handle is not None  # noqa: S101 - a regular file has a handle
            sample[ext.lower()] = handle.read()
    if key is not None:
        yield key, sample


def read(source: Source) -> tuple[Batches, int]:
    paths = downloaded_shards(source, FOLDER, SUFFIX)
    # The manifest counts the samples: a second pass over the tar headers would cost as
    # much as reading the shards.
    stored = len(source.storage.get_bytes(f"{source.prefix}/{MANIFEST}").splitlines()) - 1
    total = stored if source.count is None else min(source.count, stored)

    def parts() -> Batches:
        left = total
        for path in paths:
            for _, sample in samples(path):
                if left <= 0:
                    return
                label = np.array([int(sample["cls"])], dtype=np.int64)
                yield decode_png(sample["png"])[None], label
                left -= 1

    return rebatched(parts(), source.batch), total
