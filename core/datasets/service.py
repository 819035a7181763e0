"""Uploaded datasets: create (→ where to upload), complete (→ a validation job on the cpu
queue), read, list, delete, and what jobs need of them (``require_ready``).

The status moves awaiting_upload → validating → ready | invalid, each step a conditional
UPDATE (core/upload_lifecycle.py, shared with model imports). The validation job writes
ready (with its summary); a validation job that ends otherwise (failed, canceled, given up
by the reconciler) makes the dataset invalid in the transaction that ends it, so no
dataset stays ``validating`` for ever and reading one never writes.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import upload_lifecycle, uploads
from core.config import Settings
from core.datasets.lookup import (
    by_name,
    data_key,
    find_ready,
    prefix_of,
    require_ready,
    resolve_ref,
    split_count,
    thumbnail_key,
)
from core.datasets.orm import Dataset, DatasetStatus
from core.datasets.schemas import DatasetCreate, DatasetOut, summary_fields
from core.db import as_utc, utcnow
from core.errors import (
    DatasetNotFound,
    InvalidTransition,
    NameTaken,
    UploadMissing,
)
from core.jobs import queries, submission, transitions
from core.jobs.orm import Job
from core.jobs.service_requests import ValidateDatasetIn
from core.jobs.states import JobKind, JobStatus
from core.storage import Storage
from core.tenants.orm import Tenant

# What jobs read of a dataset, and where it is stored, live in core/datasets/lookup.py;
# named here too for the callers that hold this module.
__all__ = [
    "by_name",
    "complete",
    "create",
    "data_key",
    "delete",
    "find_ready",
    "get",
    "list_datasets",
    "mark_invalid",
    "mark_ready",
    "prefix_of",
    "purge",
    "require_ready",
    "resolve_ref",
    "split_count",
    "thumbnail_key",
    "to_out",
]

SPLIT_SEED = 0


def create(
    *,
    session: Session,
    storage: Storage,
    settings: Settings,
    tenant: Tenant,
    dataset_in: DatasetCreate,
) -> Dataset:
    uploads.check_declared_size(dataset_in.size, settings.dataset_max_upload_bytes, "upload")
    _check_name_free(session, tenant.id, dataset_in.name)
    dataset_id = f"ds_{uuid.uuid4().hex}"
    key = f"{prefix_of(dataset_id)}upload/original"
    row = Dataset(
        id=dataset_id,
        tenant_id=tenant.id,
        name=dataset_in.name,
        format=dataset_in.format,
        status=DatasetStatus.awaiting_upload,
        test_fraction=dataset_in.test_fraction,
        skip_corrupt=dataset_in.skip_corrupt,
        upload_key=key,
        declared_size=dataset_in.size,
        multipart_id=uploads.start(
            storage=storage, settings=settings, key=key, size=dataset_in.size
        ),
        created_at=utcnow(),
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as taken:  # a concurrent create took the name first (unique index)
        raise NameTaken(
            f"name: this tenant already has a dataset named {dataset_in.name!r}; choose "
            "another name",
            field="name",
        ) from taken
    return row


def _check_name_free(session: Session, tenant_id: str, name: str) -> None:
    taken = by_name(session=session, tenant_id=tenant_id, name=name)
    if taken is not None:
        raise NameTaken(
            f"name: this tenant already has a dataset named {name!r} ({taken.id}, "
            f"{taken.status}); choose another name, or delete that one first",
            field="name",
        )


def get(*, session: Session, tenant: Tenant, dataset_id: str) -> Dataset:
    row = session.scalar(
        select(Dataset).where(Dataset.id == dataset_id, Dataset.tenant_id == tenant.id)
    )
    if row is None:
        raise DatasetNotFound(f"no dataset {dataset_id} for this tenant")
    return row


def list_datasets(
    *, session: Session, tenant: Tenant, cursor: str | None = None, limit: int = 50
) -> tuple[list[Dataset], str | None]:
    """The tenant's datasets, newest first, with the jobs' cursor pagination."""
    return queries.newest_first(
        session=session,
        query=select(Dataset).where(Dataset.tenant_id == tenant.id),
        model=Dataset,
        cursor=cursor,
        limit=limit,
    )


def complete(
    *, session: Session, storage: Storage, settings: Settings, tenant: Tenant, dataset_id: str
) -> tuple[Dataset, Job]:
    """The bytes are there: start the validation job (the caller commits, then publishes)."""
    row = get(session=session, tenant=tenant, dataset_id=dataset_id)
    if row.status != DatasetStatus.awaiting_upload:
        raise InvalidTransition(
            f"dataset {row.id} is {row.status}; only a dataset awaiting its upload can be completed"
        )
    size = uploads.received(storage=storage, row=row)
    if size is None:
        raise UploadMissing(
            f"nothing has been uploaded to dataset {row.id} yet: send the file as its "
            "upload says (GET the dataset for fresh URLs), then complete it"
        )
    job = submission.service_job(
        session=session,
        tenant=tenant,
        kind=JobKind.validate_dataset,
        request=ValidateDatasetIn(dataset=row.id, name=row.name).model_dump(mode="json"),
    )
    _move(
        session,
        row.id,
        DatasetStatus.awaiting_upload,
        DatasetStatus.validating,
        size=size,
        job_id=job.id,
        multipart_id=row.multipart_id,
    )
    session.refresh(row)
    return row, job


def delete(*, session: Session, storage: Storage, tenant: Tenant, dataset_id: str) -> None:
    """Forget the dataset (a validation under way is canceled); the caller commits, then
    calls :func:`purge`. Model versions trained on it keep its id and hash in lineage."""
    row = get(session=session, tenant=tenant, dataset_id=dataset_id)
    if row.status == DatasetStatus.validating and row.job_id is not None:
        transitions.try_transition(session=session, job_id=row.job_id, target=JobStatus.canceled)
    uploads.discard(storage=storage, row=row)
    session.delete(row)
    session.flush()


def purge(*, storage: Storage, dataset_id: str) -> None:
    """Delete every object of the dataset: its upload and what validation wrote."""
    storage.delete_prefix(prefix_of(dataset_id))


def mark_ready(*, session: Session, dataset_id: str, sha256: str, summary: dict[str, Any]) -> bool:
    """validating → ready; False when the dataset is no longer validating (deleted)."""
    return _move(
        session,
        dataset_id,
        DatasetStatus.validating,
        DatasetStatus.ready,
        sha256=sha256,
        summary=summary,
        completed_at=utcnow(),
    )


def mark_invalid(*, session: Session, dataset_id: str, error: dict[str, str]) -> bool:
    return upload_lifecycle.fail(session, Dataset, dataset_id, error)


def to_out(row: Dataset, *, storage: Storage, settings: Settings, base_url: str = "") -> DatasetOut:
    prefix = f"{base_url}/v1/datasets/{row.id}"
    urls = {"get": prefix, "complete": f"{prefix}/complete"}
    if row.status == DatasetStatus.ready:
        # "thumbnail" names it; "preview", its first name, stays for the clients that read it.
        urls["thumbnail"] = urls["preview"] = storage.presign(
            thumbnail_key(row.id), settings.artifact_url_ttl_s
        )
    upload = None
    if row.status == DatasetStatus.awaiting_upload:
        upload = uploads.target(
            storage=storage,
            settings=settings,
            row=row,
            max_bytes=settings.dataset_max_upload_bytes,
        )
    return DatasetOut.model_validate(
        {
            "id": row.id,
            "name": row.name,
            "format": row.format,
            "status": row.status,
            "error": row.error,
            "size": row.size,
            "sha256": row.sha256,
            **summary_fields(row.summary),
            "validation_job": row.job_id,
            "upload": upload,
            "urls": urls,
            "created_at": as_utc(row.created_at),
            "completed_at": as_utc(row.completed_at) if row.completed_at else None,
        }
    )


def _move(
    session: Session,
    dataset_id: str,
    source: DatasetStatus,
    target: DatasetStatus,
    **values: Any,
) -> bool:
    if not upload_lifecycle.move(session, Dataset, dataset_id, source, target, **values):
        if target == DatasetStatus.validating:
            raise InvalidTransition(f"dataset {dataset_id} is no longer awaiting its upload")
        return False
    return True
