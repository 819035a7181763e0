"""Model imports: create (an s3:// source starts the import job at once; an upload first
answers where to send the archive), complete, read, list; the import job's outcome.
Its statuses move as a dataset's do (core/upload_lifecycle.py): an import whose job ends
without registering is invalid from the transaction that ends the job; reads never write.

Imports read s3:// URLs with the service's own credentials, so only prefixes the operator
lists in ``SYNTHGEN_IMPORT_ALLOWED_URLS`` may be read: a tenant must not be able to
import another tenant's files, or any bucket the service happens to reach.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import upload_lifecycle, uploads
from core.config import Settings
from core.db import as_utc, utcnow
from core.errors import ImportNotFound, InvalidRequest, InvalidTransition, UploadMissing
from core.imports.orm import ImportStatus, ModelImport
from core.imports.schemas import ImportCreate, ImportOut
from core.jobs import queries, submission
from core.jobs.orm import Job
from core.jobs.service_requests import ImportModelIn
from core.jobs.states import JobKind
from core.model_versions import service as model_versions
from core.model_versions.orm import ModelVersion
from core.storage import Storage
from core.tenants.orm import Tenant


def create(
    *,
    session: Session,
    storage: Storage,
    settings: Settings,
    tenant: Tenant,
    import_in: ImportCreate,
) -> tuple[ModelImport, Job | None]:
    """The import row, and its job when it can start now (s3:// source)."""
    if import_in.source is not None:
        _check_source(import_in.source, settings)
        if import_in.size is not None:
            raise InvalidRequest(
                "size: applies to an uploaded archive; an s3:// source is read as it is",
                field="size",
            )
    else:
        uploads.check_declared_size(import_in.size, settings.import_max_bytes, "import")
    import_id = f"imp_{uuid.uuid4().hex}"
    key = f"{prefix_of(import_id)}upload/original"
    row = ModelImport(
        id=import_id,
        tenant_id=tenant.id,
        model_name=import_in.model_name,
        format=import_in.format,
        source=import_in.source,
        status=ImportStatus.awaiting_upload,
        upload_key=key,
        declared_size=import_in.size,
        multipart_id=None
        if import_in.source
        else uploads.start(storage=storage, settings=settings, key=key, size=import_in.size),
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    if import_in.source is None:
        return row, None
    return row, _start(session, tenant, row)


def complete(
    *, session: Session, storage: Storage, tenant: Tenant, import_id: str
) -> tuple[ModelImport, Job]:
    row = get(session=session, tenant=tenant, import_id=import_id)
    if row.status != ImportStatus.awaiting_upload:
        raise InvalidTransition(
            f"import {row.id} is {row.status}; only an import awaiting its upload can be completed"
        )
    size = uploads.received(storage=storage, row=row)
    if size is None:
        raise UploadMissing(
            f"nothing has been uploaded to import {row.id} yet: send the archive as its "
            "upload says (GET the import for fresh URLs), then complete it"
        )
    row.size = size
    return row, _start(session, tenant, row)


def prefix_of(import_id: str) -> str:
    """Where an import's upload is stored (its files go to its job's ``model/``)."""
    return f"imports/{import_id}/"


def _start(session: Session, tenant: Tenant, row: ModelImport) -> Job:
    job = submission.service_job(
        session=session,
        tenant=tenant,
        kind=JobKind.import_model,
        request=ImportModelIn.model_validate({"import": row.id}).model_dump(
            mode="json", by_alias=True
        ),
    )
    if not upload_lifecycle.move(
        session,
        ModelImport,
        row.id,
        ImportStatus.awaiting_upload,
        ImportStatus.importing,
        job_id=job.id,
        size=row.size,
    ):
        raise InvalidTransition(f"import {row.id} is no longer awaiting its upload")
    session.refresh(row)
    return job


def get(*, session: Session, tenant: Tenant, import_id: str) -> ModelImport:
    row = session.scalar(
        select(ModelImport).where(ModelImport.id == import_id, ModelImport.tenant_id == tenant.id)
    )
    if row is None:
        raise ImportNotFound(f"no import {import_id} for this tenant")
    return row


def list_imports(
    *, session: Session, tenant: Tenant, cursor: str | None = None, limit: int = 50
) -> tuple[list[ModelImport], str | None]:
    """The tenant's imports, newest first, with the jobs' cursor pagination."""
    return queries.newest_first(
        session=session,
        query=select(ModelImport).where(ModelImport.tenant_id == tenant.id),
        model=ModelImport,
        cursor=cursor,
        limit=limit,
    )


def mark_registered(*, session: Session, import_id: str, model_version_id: str) -> bool:
    return upload_lifecycle.move(
        session,
        ModelImport,
        import_id,
        ImportStatus.importing,
        ImportStatus.registered,
        model_version_id=model_version_id,
        completed_at=utcnow(),
    )


def mark_invalid(*, session: Session, import_id: str, error: dict[str, str]) -> bool:
    return upload_lifecycle.fail(session, ModelImport, import_id, error)


def to_out(
    row: ModelImport,
    *,
    session: Session,
    storage: Storage,
    settings: Settings,
    base_url: str = "",
) -> ImportOut:
    prefix = f"{base_url}/v1/imports/{row.id}"
    version = session.get(ModelVersion, row.model_version_id) if row.model_version_id else None
    upload = None
    if row.status == ImportStatus.awaiting_upload:
        upload = uploads.target(
            storage=storage, settings=settings, row=row, max_bytes=settings.import_max_bytes
        )
    return ImportOut.model_validate(
        {
            "id": row.id,
            "model_name": row.model_name,
            "format": row.format,
            "source": row.source,
            "status": row.status,
            "error": row.error,
            "size": row.size,
            "job": row.job_id,
            "model_version": model_versions.summary(version) if version else None,
            "upload": upload,
            "urls": {"get": prefix, "complete": f"{prefix}/complete"},
            "created_at": as_utc(row.created_at),
            "completed_at": as_utc(row.completed_at) if row.completed_at else None,
        }
    )


def _check_source(source: str, settings: Settings) -> None:
    allowed = [p for p in settings.import_allowed_urls if p]
    if any(source.startswith(prefix) for prefix in allowed):
        return
    where = ", ".join(allowed) if allowed else "none (SYNTHGEN_IMPORT_ALLOWED_URLS is empty)"
    raise InvalidRequest(
        f"source: {source} is not under a prefix this server may import from; allowed: "
        f"{where}. Upload an archive instead (leave source out)",
        field="source",
    )
