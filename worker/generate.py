"""Generate jobs: a registered model samples ``count`` images in shards, each streamed to
storage in the requested format as it is made; manifest.csv (every image with its label
and checksum) and a class-ordered grid.png are always written."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from core.db import session_scope
from core.errors import ModelNotFound
from core.model_versions.orm import ModelVersion
from core.storage import Storage
from models import engines
from models.engines.base import Engine, Stopped, Trained
from worker.outputs import (
    MANIFEST,
    GridCollector,
    ImageFolderWriter,
    NpzWriter,
    OutputWriter,
    PngWriter,
)
from worker.runner import JobContext, finish
from worker.shards import ShardCache


def get_version(ctx: JobContext, version_id: str | None) -> ModelVersion:
    with session_scope(ctx.settings.database_url) as session:
        version = session.get(ModelVersion, version_id) if version_id else None
        if version is None:
            raise ModelNotFound("the model version this job was submitted for no longer exists")
        session.expunge(version)
    return version


def load_version(ctx: JobContext, version_id: str | None) -> tuple[ModelVersion, Engine, Trained]:
    version = get_version(ctx, version_id)
    directory = ctx.workdir / "model"
    download_prefix(ctx.storage, version.checkpoint_uri, directory)
    engine = engines.get(version.engine)
    return version, engine, engine.load(directory)


def download_prefix(storage: Storage, prefix: str, directory: Path) -> None:
    for obj in storage.list(prefix):
        storage.get_file(obj.key, directory / obj.key[len(prefix) :].lstrip("/"))


def label_plan(
    labels: list[int] | None, count: int, num_classes: int, conditional: bool
) -> np.ndarray | None:
    """One class per image: as given, cycled from a class list, or all classes evenly."""
    if not conditional:
        return None
    if labels is None:
        return np.arange(count, dtype=np.int64) % num_classes
    if len(labels) == count:
        return np.asarray(labels, dtype=np.int64)
    return np.asarray(labels, dtype=np.int64)[np.arange(count) % len(labels)]


SAMPLE_BATCH = 256
"""Images an engine samples together inside a shard. It is every engine's default, passed
explicitly so that progress inside a shard can count the images of finished batches."""


def shard_seed(seed: int, shard: int) -> int:
    # Distinct, reproducible streams per shard: the same request makes the same images.
    return (seed * 1_000_003 + shard) % (2**63 - 1)


def run(ctx: JobContext) -> None:
    request = ctx.job.request
    version, engine, trained = load_version(ctx, ctx.job.model_version_id)
    count = int(request["count"])
    plan = label_plan(
        request.get("labels"),
        count,
        trained.num_classes,
        bool(version.spec.get("conditional", True)),
    )
    class_names = trained.class_names or [str(c) for c in range(trained.num_classes)]
    options = {k: v for k, v in request.get("config", {}).items() if v is not None}
    writer = make_writer(ctx, request["output_format"], count, trained.image_shape, class_names)
    grid = GridCollector(trained.num_classes if plan is not None else 1)

    ctx.progress.set_stage("generate")
    shard_size = ctx.settings.shard_size
    shards = ShardCache(ctx.storage, ctx.prefix)
    for shard, start in enumerate(range(0, count, shard_size)):
        if ctx.should_stop():
            raise Stopped
        n = min(shard_size, count - start)
        labels = None if plan is None else torch.from_numpy(plan[start : start + n])
        images = shards.get(shard)
        if images is None:
            images = engine.sample(
                trained,
                n,
                labels,
                seed=shard_seed(int(request["seed"]), shard),
                should_stop=ctx.should_stop,
                progress=_within_shard(ctx, start, n, count),
                batch_size=SAMPLE_BATCH,
                **options,
            ).numpy()
            shards.put(shard, images)
        shard_labels = plan[start : start + n] if plan is not None else np.zeros(n, np.int64)
        writer.add(images, shard_labels)
        grid.add(images, shard_labels)
        ctx.progress(start + n, count, images=start + n)
        ctx.output(shard=shard, images=start + n, total=count)
    objects = writer.finish()
    objects.append(("grid.png", ctx.storage.put_bytes(f"{ctx.prefix}/grid.png", grid.png())))
    shards.clear()
    ctx.progress.flush()
    finish(
        ctx,
        result={
            "count": writer.count,
            "output_format": request["output_format"],
            "images_at": writer.location,
            "manifest": MANIFEST,
            "artifacts": len(objects),
            "shards": {"total": math.ceil(count / shard_size), "reused": shards.reused},
            "image_shape": list(trained.image_shape),
            "class_names": class_names,
            "model_version": {"id": version.id, "name": version.name, "version": version.version},
            "files": sorted(name for name, _ in objects if not name.startswith("images/")),
        },
        objects=objects,
    )


def _within_shard(ctx: JobContext, start: int, n: int, count: int) -> Callable[[int, int], None]:
    """The engine's per-step progress inside one shard, as progress of the whole job: a
    shard is minutes of sampling on a CPU, and a poller should see it move and get an ETA.

    ``step`` moves with every denoising step; ``images`` counts only whole images, those
    of the shard's batches of :data:`SAMPLE_BATCH` the engine has finished (its ``total``
    is batches × steps per batch, so ``done * batches // total`` batches are done).
    """
    batches = math.ceil(n / SAMPLE_BATCH)

    def progress(done: int, total: int) -> None:
        finished = min(n, done * batches // total * SAMPLE_BATCH)
        ctx.progress(start + n * done // total, count, images=start + finished)

    return progress


def make_writer(
    ctx: JobContext, fmt: str, count: int, shape: tuple[int, int, int], class_names: list[str]
) -> OutputWriter:
    prefix = ctx.prefix
    if fmt == "npz":
        return NpzWriter(ctx.storage, prefix, ctx.workdir, count, tuple(shape), class_names)
    if fmt == "imagefolder":
        return ImageFolderWriter(ctx.storage, prefix, ctx.workdir, class_names)
    return PngWriter(ctx.storage, prefix, ctx.workdir, class_names)
