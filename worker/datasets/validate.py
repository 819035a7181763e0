"""The ``validate_dataset`` job (cpu queue): an uploaded file becomes a ready dataset, or
is refused with the reason and leaves nothing behind.

1. the upload's size is checked before it is downloaded, then its SHA-256 taken (the
   content hash every model trained on it records);
2. the format's reader checks and decodes it (worker/datasets/formats.py, archive.py);
3. the split is made once, stratified and seeded, and stored with the images in
   ``datasets/{id}/data.npz``, beside a thumbnail grid;
4. the outcome carries the summary (classes, counts, sizes, split, corrupt files): the
   runner marks the dataset ``ready`` with it and the job's success, in one transaction.

On any failure every object under ``datasets/{id}/`` (the upload too) is deleted and the
job fails with the reason; reading the dataset then shows it ``invalid`` with that error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.datasets import service as datasets
from core.datasets.orm import Dataset, DatasetStatus
from core.jobs.service_requests import ValidateDatasetIn
from models.errors import Stopped
from models.uploads import split_mask
from worker.context import JobContext
from worker.datasets.archive import ArchiveTooLarge, Limits
from worker.datasets.formats import Images, Options, read
from worker.images import grid_png
from worker.lineage import sha256_file
from worker.outcome import DatasetReady, File, Outcome
from worker.service_jobs import waiting_row

THUMBNAIL_PER_CLASS = 8
THUMBNAIL_CLASSES = 20


def run(ctx: JobContext[ValidateDatasetIn]) -> Outcome:
    row = waiting_row(ctx, Dataset, ctx.request.dataset, DatasetStatus.validating, "dataset")
    ctx.delete_on_failure(datasets.prefix_of(row.id))
    return _validate(ctx, row)


def _validate(ctx: JobContext[ValidateDatasetIn], row: Dataset) -> Outcome:
    settings = ctx.settings
    limits = Limits.for_datasets(settings)
    if row.size is not None and row.size > limits.upload_bytes:
        raise ArchiveTooLarge(
            f"the upload is {row.size} bytes, over the limit of {limits.upload_bytes} bytes"
        )
    ctx.progress.set_stage("download")
    upload = ctx.workdir / "upload"
    ctx.storage.get_file(row.upload_key, upload)
    sha256 = sha256_file(upload)

    ctx.progress.set_stage("validate")
    options = Options(
        limits=limits,
        max_pixels=settings.dataset_max_pixels,
        max_side=settings.dataset_max_side,
        skip_corrupt=row.skip_corrupt,
    )

    def progress(done: int, total: int) -> None:
        if ctx.should_stop():
            raise Stopped(f"validation stopped after {done} of {total} steps")
        ctx.progress(done, total)

    images = read(row.format, upload, ctx.workdir, options, progress)
    upload.unlink()

    ctx.progress.set_stage("store")
    split = split_mask(images.labels, row.test_fraction, datasets.SPLIT_SEED)
    data = ctx.workdir / "data.npz"
    _write_npz(data, images, split)
    # The dataset's files live in its own folder, not the job's: stored there now, the
    # thumbnail recorded as the job's artifact too.
    stored = ctx.storage.put_file(datasets.data_key(row.id), data)
    thumbnail = ctx.storage.put_bytes(
        datasets.thumbnail_key(row.id), _thumbnail(images), "image/png"
    )
    summary = _summary(images, split, row.test_fraction)

    ctx.progress.flush()
    return Outcome(
        result={
            "dataset": row.id,
            "num_images": images.count,
            "classes": images.classes,
            "sha256": sha256,
            "stored_bytes": stored.size,
        },
        files=[File("preview.png", thumbnail)],  # the artifact keeps its first name
        register=DatasetReady(row.id, sha256, summary),
    )


def _images(images: Images) -> np.ndarray:
    """The raw images as a read-only uint8 (n, c, h, w) map of the file."""
    return np.memmap(images.path, dtype=np.uint8, mode="r", shape=(images.count, *images.shape))


def _write_npz(path: Path, images: Images, split: np.ndarray) -> None:
    """``data.npz`` as models/uploads.py reads it; the images are streamed from disk."""
    np.savez(
        path,
        images=_images(images),
        labels=images.labels.astype(np.int64),
        classes=np.asarray(images.classes, dtype=str),
        split=split,
    )


def _thumbnail(images: Images) -> bytes:
    """Up to 8 images of each of the first 20 classes, a row per class."""
    pixels = _images(images)
    rows = []
    for label in range(min(len(images.classes), THUMBNAIL_CLASSES)):
        chosen = np.flatnonzero(images.labels == label)[:THUMBNAIL_PER_CLASS]
        row = np.zeros((THUMBNAIL_PER_CLASS, *images.shape), dtype=np.uint8)
        row[: len(chosen)] = pixels[chosen]
        rows.append(row)
    grid = np.concatenate(rows)
    return grid_png(grid, nrow=THUMBNAIL_PER_CLASS, scale=max(1, 64 // images.shape[-1]))


def _summary(images: Images, split: np.ndarray, test_fraction: float) -> dict[str, Any]:
    def counts(mask: np.ndarray) -> dict[str, int]:
        found = np.bincount(images.labels[mask], minlength=len(images.classes))
        return {name: int(n) for name, n in zip(images.classes, found, strict=True)}

    return {
        "classes": images.classes,
        "counts": counts(np.ones(images.count, dtype=bool)),
        "num_images": images.count,
        "image_shape": list(images.shape),
        "original_sizes": images.original_sizes,
        "resized": images.resized,
        "split": {
            "test_fraction": test_fraction,
            "seed": datasets.SPLIT_SEED,
            "train": counts(split == 0),
            "test": counts(split == 1),
        },
        "corrupt": images.corrupt,
        "ignored": images.ignored[:100],
    }
