"""POST /v1/models/{ref}/preview: the playground's grid, a PNG drawn live from a model by
the preview worker, within a bound. ("Preview" means only this; a dataset's grid of its own
images is its thumbnail, a train or generate job's grid.png its sample grid.)

The API never loads torch. It inserts a ``previews`` row, publishes ``run_preview`` to
the ``preview`` queue (a worker of its own, so a long train job on the gpu worker never
delays it), then watches the row until the worker marks it done and reads the PNG from
storage. If ``preview_wait_s`` passes first it answers 202 with the preview's URL.
The wait is async: a pending preview holds no request thread and no database connection.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from api.deps import SessionDep, SettingsDep, StorageDep, TenantDep
from core import queue
from core.config import Settings
from core.db import session_scope
from core.errors import PreviewFailed
from core.model_versions.orm import ModelVersion
from core.previews import service as previews
from core.previews.orm import Preview
from core.previews.schemas import PreviewIn, PreviewOut
from core.storage import Storage
from core.tenants.orm import Tenant

router = APIRouter(tags=["preview"])

PNG_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "the grid, one row per class"},
    202: {"model": PreviewOut, "description": "not done within the bound; poll urls.get"},
}


def _create(session: Session, settings: Settings, tenant: Tenant, ref: str, body: PreviewIn) -> str:
    try:
        preview = previews.create(session=session, tenant=tenant, ref=ref, preview_in=body)
        session.commit()
    finally:
        # Release the connection now: the wait below may last preview_wait_s.
        session.close()
    queue.publish_preview(settings, preview.id)
    return preview.id


def _read(settings: Settings, preview_id: str) -> tuple[Preview, ModelVersion]:
    with session_scope(settings.database_url) as session:
        row = session.get(Preview, preview_id)
        version = session.get(ModelVersion, row.model_version_id) if row else None
        if row is None or version is None:
            raise PreviewFailed("the preview was removed while it ran (its model was deleted)")
        session.expunge_all()
        return row, version


def _out(
    request: Request, settings: Settings, storage: Storage, row: Preview, version: ModelVersion
) -> PreviewOut:
    return previews.to_out(
        row,
        version,
        base_url=str(request.base_url).rstrip("/"),
        storage=storage,
        url_ttl_s=settings.artifact_url_ttl_s,
    )


@router.post("/v1/models/{ref}/preview", responses=PNG_RESPONSE, response_class=Response)
async def preview(
    ref: str,
    body: Annotated[PreviewIn, Body()],
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    tenant: TenantDep,
) -> Response:
    preview_id = await run_in_threadpool(_create, session, settings, tenant, ref, body)
    deadline = time.monotonic() + settings.preview_wait_s
    delay = 0.01
    while True:
        row, version = await run_in_threadpool(_read, settings, preview_id)
        if row.status == "succeeded" and row.image_key:
            png = await run_in_threadpool(storage.get_bytes, row.image_key)
            headers = {
                "X-Preview-Id": row.id,
                "X-Model-Version": f"{version.name}:{version.version}",
                "X-Preview-Cache": "hit" if row.cache_hit else "miss",
            }
            return Response(png, media_type="image/png", headers=headers)
        if row.status == "failed":
            raise PreviewFailed((row.error or {}).get("message", "the preview worker failed"))
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            out = _out(request, settings, storage, row, version)
            return JSONResponse(
                out.model_dump(mode="json"),
                status_code=status.HTTP_202_ACCEPTED,
                headers={"Location": out.urls["get"]},
            )
        await asyncio.sleep(min(delay, remaining))
        delay = min(delay * 1.5, 0.1)


@router.get("/v1/previews/{preview_id}", response_model=PreviewOut)
def get_preview(
    preview_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    tenant: TenantDep,
) -> PreviewOut:
    row = previews.get(session=session, tenant=tenant, preview_id=preview_id)
    version = session.get(ModelVersion, row.model_version_id)
    assert version is not None  # noqa: S101 - the row cascades with its version
    return _out(request, settings, storage, row, version)
