"""/v1/imports: bring an existing model into the registry (a diffusers pipeline or one of
our engines' checkpoints), from an uploaded archive or an allowed s3:// prefix."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from api.deps import DispatcherDep, SessionDep, SettingsDep, StorageDep, TenantDep, base_url
from core.imports import service as imports
from core.imports.schemas import ImportCreate, ImportOut, ImportPage
from core.jobs import submission

router = APIRouter(prefix="/v1/imports", tags=["models"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ImportOut)
def create_import(
    import_in: ImportCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    tenant: TenantDep,
    dispatcher: DispatcherDep,
) -> ImportOut:
    """With ``source`` the import job starts at once; without, upload the archive as
    ``upload`` says, then POST ``complete``. The job validates the format, records a
    checksum per file and registers the next version of ``model_name``."""
    row, job = imports.create(
        session=session, storage=storage, settings=settings, tenant=tenant, import_in=import_in
    )
    session.commit()
    if job is not None:
        submission.publish(session=session, settings=settings, job=job, dispatcher=dispatcher)
    response.headers["Location"] = f"{base_url(request)}/v1/imports/{row.id}"
    return imports.to_out(
        row, session=session, storage=storage, settings=settings, base_url=base_url(request)
    )


@router.get("", response_model=ImportPage)
def list_imports(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    tenant: TenantDep,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ImportPage:
    """The tenant's imports, newest first; follow ``next_cursor`` to the end."""
    rows, next_cursor = imports.list_imports(
        session=session, tenant=tenant, cursor=cursor, limit=limit
    )
    items = [
        imports.to_out(
            row, session=session, storage=storage, settings=settings, base_url=base_url(request)
        )
        for row in rows
    ]
    return ImportPage(items=items, next_cursor=next_cursor)


@router.get("/{import_id}", response_model=ImportOut)
def get_import(
    import_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    tenant: TenantDep,
) -> ImportOut:
    row = imports.get(session=session, tenant=tenant, import_id=import_id)
    return imports.to_out(
        row, session=session, storage=storage, settings=settings, base_url=base_url(request)
    )


@router.post("/{import_id}/complete", response_model=ImportOut)
def complete_import(
    import_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    tenant: TenantDep,
    dispatcher: DispatcherDep,
) -> ImportOut:
    row, job = imports.complete(
        session=session, storage=storage, tenant=tenant, import_id=import_id
    )
    session.commit()
    submission.publish(session=session, settings=settings, job=job, dispatcher=dispatcher)
    return imports.to_out(
        row, session=session, storage=storage, settings=settings, base_url=base_url(request)
    )
