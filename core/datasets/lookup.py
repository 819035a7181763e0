"""What jobs need of uploaded datasets, read-only: where a dataset's objects are stored,
a name resolved to the id a job stores, the dataset when it is ready, how many images a
split holds. Job admission (core/jobs/sources.py) and the worker read datasets through
this module; it imports nothing of the job service, so submission → admission → sources
never comes back round to submission through core/datasets/service.py (which makes
validation jobs)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import catalog
from core.datasets.orm import Dataset, DatasetStatus
from core.errors import DatasetNotFound, InvalidRequest


def prefix_of(dataset_id: str) -> str:
    return f"datasets/{dataset_id}/"


def data_key(dataset_id: str) -> str:
    """The validated dataset: images, labels, class names and the split in one .npz."""
    return f"datasets/{dataset_id}/data.npz"


def thumbnail_key(dataset_id: str) -> str:
    """The dataset's thumbnail: a grid of some of its images, written by validation. (A
    "preview" is the playground's grid drawn from a model, core/previews/; the object
    keeps the name it was first stored under.)"""
    return f"datasets/{dataset_id}/preview.png"


def default_image_size(name: str, summary: Mapping[str, Any] | None) -> int | None:
    """The size a train job on dataset ``name`` gets when its config names none: a
    built-in's usual size; an upload's side when its images are square (``summary``: its
    validation summary), else None (the engine says what to set)."""
    if not catalog.is_upload(name) and name in catalog.DEFAULT_IMAGE_SIZE:
        return catalog.DEFAULT_IMAGE_SIZE[name]
    _, height, width = (summary or {}).get("image_shape") or (0, 0, 0)
    return int(height) if height and height == width else None


def by_name(*, session: Session, tenant_id: str, name: str) -> Dataset | None:
    return session.scalar(
        select(Dataset).where(Dataset.tenant_id == tenant_id, Dataset.name == name)
    )


def resolve_ref(
    *, session: Session, tenant_id: str, ref: str, default_split: str, field: str
) -> str:
    """A job's dataset reference as the job stores it: a built-in or an id as sent, an
    uploaded dataset's name as "ds_…:split" (the one resolution every job kind uses, so a
    name deleted and used again later never changes what a stored job reads)."""
    name, _, split = ref.partition(":")
    if not catalog.is_dataset_name(name):
        return ref
    row = by_name(session=session, tenant_id=tenant_id, name=name)
    if row is None:
        raise DatasetNotFound(
            f"{field}: no dataset named {name!r} for this tenant (GET /v1/datasets lists "
            f"yours); built-in datasets: {', '.join(catalog.DATASET_SPLITS)}",
            field=field,
        )
    return f"{row.id}:{split or default_split}"


def find_ready(*, session: Session, tenant_id: str, dataset_id: str) -> Dataset | None:
    """The tenant's dataset when it is ready for jobs, else None (no refusal)."""
    row = session.scalar(
        select(Dataset).where(Dataset.id == dataset_id, Dataset.tenant_id == tenant_id)
    )
    return row if row is not None and row.status == DatasetStatus.ready else None


def require_ready(*, session: Session, tenant_id: str, dataset_id: str, field: str) -> Dataset:
    """The tenant's dataset, ready for jobs; else 404 / 422 naming ``field``."""
    row = session.scalar(
        select(Dataset).where(Dataset.id == dataset_id, Dataset.tenant_id == tenant_id)
    )
    if row is None:
        raise DatasetNotFound(f"{field}: no dataset {dataset_id} for this tenant", field=field)
    if row.status != DatasetStatus.ready:
        raise InvalidRequest(
            f"{field}: dataset {dataset_id} is {row.status}; jobs can use it once it is ready",
            field=field,
        )
    return row


def split_count(row: Dataset, split: str) -> int:
    return sum(((row.summary or {}).get("split") or {}).get(split, {}).values())


def names_in(*, session: Session, tenant_id: str, text: str) -> dict[str, str]:
    """The names of the tenant's uploaded datasets whose ids ``text`` mentions, by id (for
    a report that would otherwise name them only by id). Names are unique per tenant; a
    dataset deleted since has no row and keeps its id alone."""
    ids = set(re.findall(catalog.UPLOAD_ID_PATTERN.strip("^$"), text))
    if not ids:
        return {}
    rows = session.execute(
        select(Dataset.id, Dataset.name).where(Dataset.tenant_id == tenant_id, Dataset.id.in_(ids))
    )
    return {row.id: row.name for row in rows if row.name}
