"""Datasets as jobs load them: a built-in by name, or a tenant's uploaded ``ds_…`` from
the ``data.npz`` its validation stored (fetched once per job)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core import catalog
from core.datasets import lookup as datasets
from core.db import session_scope
from models import datasets as builtin
from models import uploads
from models.datasets import ImageDataset
from worker.context import JobContext


@dataclass(frozen=True)
class Upload:
    """A tenant's uploaded dataset as a job reads it: its row, read once per job."""

    id: str
    name: str
    sha256: str | None
    summary: dict[str, Any]


def upload(ctx: JobContext, name: str, *, field: str = "dataset") -> Upload:
    """The uploaded dataset ``name``, checked to be the job's tenant's and ready (else 404
    / 422 naming ``field``) at its first use in the job, then kept on the job's context:
    the train path (image size, data, lineage) reads the row once, not three times."""
    found: Upload | None = ctx.datasets.get(name)
    if found is None:
        with session_scope(ctx.settings.database_url) as session:
            row = datasets.require_ready(
                session=session, tenant_id=ctx.job.tenant_id, dataset_id=name, field=field
            )
            found = Upload(row.id, row.name, row.sha256, dict(row.summary or {}))
        ctx.datasets[name] = found
    return found


def load(
    ctx: JobContext, name: str, split: str, image_size: int | None, *, field: str = "dataset"
) -> ImageDataset:
    """``name:split`` at ``image_size``; an upload must belong to the job's tenant."""
    if not catalog.is_upload(name):
        return builtin.load(name, split=split, image_size=image_size, root=ctx.settings.data_root)
    path = ctx.workdir / "datasets" / f"{name}.npz"
    if not path.is_file():
        upload(ctx, name, field=field)  # still there, still this tenant's, still ready
        ctx.storage.get_file(datasets.data_key(name), path)
    return uploads.load(path, name, split, image_size)


def describe(ctx: JobContext, name: str, *, field: str = "dataset") -> dict[str, Any]:
    """What lineage records of a dataset: its id, name and content hash (uploads), or
    that it is built in."""
    if not catalog.is_upload(name):
        return {"builtin": True}
    found = upload(ctx, name, field=field)
    return {"id": found.id, "name": found.name, "sha256": found.sha256}


def default_image_size(ctx: JobContext, name: str) -> int | None:
    """A built-in's usual size; an upload's own side when its images are square (None
    lets the engine say what to set)."""
    summary = upload(ctx, name).summary if catalog.is_upload(name) else None
    return datasets.default_image_size(name, summary)


def class_names(ctx: JobContext, name: str) -> list[str]:
    """The classes of dataset ``name``, in label order."""
    if not catalog.is_upload(name):
        return builtin.load(name, split="test", count=1, root=ctx.settings.data_root).class_names
    return list(upload(ctx, name, field="reference").summary.get("classes") or [])
