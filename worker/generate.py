"""Generate jobs: a registered model samples ``count`` images in shards, each streamed to
storage in the requested format as it is made; manifest.csv (every image with its label
and checksum), a class-ordered grid.png and the dataset's documents complete the
outcome."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from core.jobs.schemas import GenerateJobIn
from core.model_versions import service as model_versions
from worker import formats
from worker.context import JobContext
from worker.formats import documents
from worker.formats.description import Description, evaluations_of, model_of
from worker.images import GridCollector
from worker.lineage import code_version
from worker.outcome import File, Outcome, stored
from worker.sampling import SAMPLE_BATCH, label_plan, shards
from worker.shards import ShardCache
from worker.versions import load_version


def run(ctx: JobContext[GenerateJobIn]) -> Outcome:
    request = ctx.request
    version, engine, trained = load_version(ctx, ctx.job.model_version_id)
    count = request.count
    plan = label_plan(
        request.labels,
        count,
        trained.num_classes,
        bool(version.spec.get("conditional", True)),
    )
    class_names = trained.class_names or [str(c) for c in range(trained.num_classes)]
    options = request.config.options()
    writer = formats.writer(
        request.output_format,
        formats.Target(
            ctx.storage,
            ctx.prefix,
            ctx.workdir,
            count,
            trained.image_shape,
            class_names,
            model_version=version.id,
            shard_bytes=ctx.settings.output_shard_bytes,
            shard_samples=ctx.settings.output_shard_samples,
        ),
    )
    grid = GridCollector(trained.num_classes if plan is not None else 1)

    ctx.progress.set_stage("generate")
    shard_size = ctx.settings.shard_size
    cache = ShardCache(ctx.storage, ctx.prefix)
    for shard in shards(
        count, shard_size, seed=request.seed, plan=plan, should_stop=ctx.should_stop
    ):
        start, n = shard.start, shard.size
        images = cache.get(shard.number)
        if images is None:
            images = engine.sample(
                trained,
                n,
                None if shard.labels is None else torch.from_numpy(shard.labels),
                seed=shard.seed,
                should_stop=ctx.should_stop,
                progress=_within_shard(ctx, start, n, count),
                batch_size=SAMPLE_BATCH,
                planned_images=count,  # the whole job: whether compiling on CPU pays
                **options,
            ).numpy()
            cache.put(shard.number, images)
        labels = shard.labels if shard.labels is not None else np.zeros(n, np.int64)
        writer.add(images, labels, np.full(n, shard.seed, dtype=np.int64))
        grid.add(images, labels)
        ctx.progress(start + n, count, images=start + n)
        ctx.output(shard=shard.number, images=start + n, total=count)
    files = stored(writer.finish())  # the shards went to storage as they were written
    files.append(File("grid.png", grid.png()))
    description = Description(
        job_id=ctx.job.id,
        kind="generate",
        created_at=ctx.job.created_at,
        output_format=request.output_format,
        location=writer.location,
        count=writer.count,
        image_shape=trained.image_shape,
        class_names=class_names,
        counts=writer.manifest.counts,
        files={f.name: f.size for f in files if not f.name.startswith("images/")},
        sha256=writer.sha256,
        sampling={
            "seed": request.seed,
            "count": count,
            "labels": _labels_said(request.labels),
            "config": options,
            "shard_size": shard_size,
            "conditional": plan is not None,
        },
        model=model_of(version),
        lineage=version.lineage,
        evaluations=evaluations_of(version.metrics),
        code_version=code_version(),
    )
    files += documents.files(description)
    cache.clear()
    ctx.progress.flush()
    return Outcome(
        result={
            "count": writer.count,
            "output_format": request.output_format,
            "images_at": writer.location,
            "manifest": formats.MANIFEST,
            "artifacts": len(files),
            "shards": {"total": math.ceil(count / shard_size), "reused": cache.reused},
            "image_shape": list(trained.image_shape),
            "class_names": class_names,
            "model_version": model_versions.summary(version),
            # The model's differential privacy (what its training spent; the images are
            # post-processing of the weights); null: not differentially private.
            "privacy": trained.privacy,
            "files": sorted(f.name for f in files if not f.name.startswith("images/")),
        },
        files=files,
    )


def _labels_said(labels: list[int] | None) -> object:
    """The request's labels for the dataset card: a long per-image list is summarised."""
    if labels is None or len(labels) <= 100:
        return labels
    return f"one class per image as the request listed them ({len(labels)} entries)"


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
