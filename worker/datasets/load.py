"""Datasets as jobs load them: a built-in by name, or a tenant's uploaded ``ds_…`` from
the ``data.npz`` its validation stored (fetched once per job)."""

from __future__ import annotations

from typing import Any

from core import catalog
from core.datasets import lookup as datasets
from core.db import session_scope
from models import datasets as builtin
from models import uploads
from models.datasets import ImageDataset
from worker.context import JobContext


def load(
    ctx: JobContext, name: str, split: str, image_size: int | None, *, field: str = "dataset"
) -> ImageDataset:
    """``name:split`` at ``image_size``; an upload must belong to the job's tenant."""
    if not catalog.is_upload(name):
        return builtin.load(name, split=split, image_size=image_size, root=ctx.settings.data_root)
    path = ctx.workdir / "datasets" / f"{name}.npz"
    if not path.is_file():
        describe(ctx, name, field=field)  # still there, still this tenant's, still ready
        ctx.storage.get_file(datasets.data_key(name), path)
    return uploads.load(path, name, split, image_size)


def describe(ctx: JobContext, name: str, *, field: str = "dataset") -> dict[str, Any]:
    """What lineage records of a dataset: its id, name and content hash (uploads), or
    that it is built in."""
    if not catalog.is_upload(name):
        return {"builtin": True}
    with session_scope(ctx.settings.database_url) as session:
        row = datasets.require_ready(
            session=session, tenant_id=ctx.job.tenant_id, dataset_id=name, field=field
        )
        return {"id": row.id, "name": row.name, "sha256": row.sha256}


def default_image_size(ctx: JobContext, name: str) -> int | None:
    """A built-in's usual size; an upload's own side when its images are square (None
    lets the engine say what to set)."""
    if not catalog.is_upload(name):
        return catalog.DEFAULT_IMAGE_SIZE[name]
    with session_scope(ctx.settings.database_url) as session:
        row = datasets.require_ready(
            session=session, tenant_id=ctx.job.tenant_id, dataset_id=name, field="dataset"
        )
        _, height, width = (row.summary or {}).get("image_shape", [0, 0, 0])
    return int(height) if height == width else None


def class_names(ctx: JobContext, name: str) -> list[str]:
    """The classes of dataset ``name``, in label order."""
    if not catalog.is_upload(name):
        return builtin.load(name, split="test", count=1, root=ctx.settings.data_root).class_names
    with session_scope(ctx.settings.database_url) as session:
        row = datasets.require_ready(
            session=session, tenant_id=ctx.job.tenant_id, dataset_id=name, field="reference"
        )
        return list((row.summary or {}).get("classes") or [])
