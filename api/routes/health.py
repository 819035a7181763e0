"""Liveness, readiness (database, broker, storage) and local-store downloads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy import text

from api.deps import SessionDep, SettingsDep, StorageDep
from api.errors import problem
from core import queue
from core.errors import ArtifactNotFound
from core.storage import LocalStorage

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(
    request: Request, session: SessionDep, settings: SettingsDep, storage: StorageDep
) -> JSONResponse:
    checks: dict[str, str] = {}
    for name, probe in (
        ("database", lambda: session.execute(text("SELECT 1"))),
        ("broker", lambda: queue.ping_broker(settings)),
        ("storage", storage.check),
    ):
        try:
            probe()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks[name] = f"unavailable: {type(exc).__name__}"
    if all(v == "ok" for v in checks.values()):
        return JSONResponse({"status": "ready", "checks": checks})
    failing = ", ".join(k for k, v in checks.items() if v != "ok")
    return problem(503, "Not ready", f"unavailable: {failing}", request, checks=checks)


@router.get("/v1/files/{key:path}", include_in_schema=False)
def download(
    key: str,
    storage: StorageDep,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query(max_length=128)],
) -> FileResponse:
    """Serve a local-store object through a signed URL (S3 serves its own)."""
    if not isinstance(storage, LocalStorage) or not storage.verify(key, expires, signature):
        raise ArtifactNotFound("this download link is invalid or has expired")
    path = storage.path_of(key)
    if not path.is_file():
        raise ArtifactNotFound("this artifact no longer exists")
    # Inline, so the console can show a report or a grid; sandboxed, so an HTML artifact
    # opened from this origin runs no script and reads nothing of the API's origin.
    return FileResponse(
        path,
        filename=path.name,
        content_disposition_type="inline",
        headers={"Content-Security-Policy": "sandbox"},
    )
