"""/v1/jobs: submit, poll (both honour ``Prefer: wait=N``), list, cancel, artifacts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Header, Query, Request, Response, status
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api import metrics, waiting
from api.deps import (
    DispatcherDep,
    HubDep,
    PreferWaitDep,
    SessionDep,
    SettingsDep,
    StorageDep,
    TenantDep,
)
from api.hub import EventHub
from core.artifacts import service as artifacts
from core.config import Settings
from core.db import read_session, session_factory
from core.jobs import presentation, queries, submission, transitions
from core.jobs.outbox import Dispatcher
from core.jobs.schemas import AnyJobIn, ArtifactOut, ArtifactPage, JobIn, JobOut, JobPage
from core.jobs.states import JobKind, JobStatus
from core.telemetry import logs
from core.tenants.orm import Tenant
from core.webhooks import service as webhooks

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


# The three routes below are async with async dependencies only, and open their session
# inside their one thread-pool call: a sync dependency (a SessionDep) would cost a hop to
# the pool and back per request, on the paths bench/submission.py measures.


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobOut)
async def submit_job(
    job_in: Annotated[JobIn, Body()],
    request: Request,
    response: Response,
    tenant: TenantDep,
    settings: SettingsDep,
    hub: HubDep,
    dispatcher: DispatcherDep,
    wait: PreferWaitDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JobOut:
    # Auth (TenantDep) comes first: it is the dependency that can refuse the request.
    job = await run_in_threadpool(
        _submit, job_in, request, response, settings, dispatcher, tenant, idempotency_key
    )
    if wait is None:
        return job
    return await _maybe_hold(job, wait, hub, settings, tenant, request, response)


def _submit(
    job_in: AnyJobIn,
    request: Request,
    response: Response,
    settings: Settings,
    dispatcher: Dispatcher,
    tenant: Tenant,
    idempotency_key: str | None,
) -> JobOut:
    base_url = str(request.base_url).rstrip("/")
    with session_factory(settings.database_url)() as session:
        submitted = submission.submit(
            session=session,
            settings=settings,
            tenant=tenant,
            job_in=job_in,
            idempotency_key=idempotency_key,
            dispatcher=dispatcher,
        )
    job = submitted.job
    if submitted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    else:
        metrics.JOBS_SUBMITTED.labels(kind=job.kind).inc()
        logs.bind(job_id=job.id)
        response.headers["Location"] = f"{base_url}/v1/jobs/{job.id}"
    return presentation.to_out(job, base_url=base_url)


@router.get("", response_model=JobPage)
async def list_jobs(
    request: Request,
    settings: SettingsDep,
    tenant: TenantDep,
    status: JobStatus | None = None,
    kind: JobKind | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JobPage:
    def page() -> JobPage:
        with read_session(settings.database_url) as session:
            rows, next_cursor = queries.list_jobs(
                session=session, tenant=tenant, status=status, kind=kind, cursor=cursor, limit=limit
            )
            base_url = str(request.base_url).rstrip("/")
            items = [presentation.to_out(r, base_url=base_url) for r in rows]
        return JobPage(items=items, next_cursor=next_cursor)

    return await run_in_threadpool(page)


@router.get("/{job_id}", response_model=JobOut)
async def get_job(
    job_id: str,
    request: Request,
    response: Response,
    settings: SettingsDep,
    tenant: TenantDep,
    hub: HubDep,
    wait: PreferWaitDep,
) -> JobOut:
    job = await run_in_threadpool(_read, settings, tenant, job_id, request)
    return await _maybe_hold(job, wait, hub, settings, tenant, request, response)


def _read(settings: Settings, tenant: Tenant, job_id: str, request: Request) -> JobOut:
    with read_session(settings.database_url) as session:
        job = queries.get_job(session=session, tenant=tenant, job_id=job_id)
        return presentation.to_out(job, base_url=str(request.base_url).rstrip("/"))


async def _maybe_hold(
    job: JobOut,
    wait: int | None,
    hub: EventHub,
    settings: Settings,
    tenant: Tenant,
    request: Request,
    response: Response,
) -> JobOut:
    """Honour ``Prefer: wait=N`` (api/waiting.py); no connection is held meanwhile."""
    if wait is None:
        return job

    def read() -> JobOut:
        return _read(settings, tenant, job.id, request)

    return await waiting.hold(hub=hub, job_id=job.id, seconds=wait, read=read, response=response)


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel_job(
    job_id: str, request: Request, session: SessionDep, settings: SettingsDep, tenant: TenantDep
) -> JobOut:
    job = transitions.cancel_job(session=session, tenant=tenant, job_id=job_id)
    session.commit()
    webhooks.send_queued(settings=settings, session=session)
    return presentation.to_out(job, base_url=str(request.base_url).rstrip("/"))


@router.get("/{job_id}/artifacts", response_model=ArtifactPage)
def list_artifacts(
    job_id: str,
    session: SessionDep,
    settings: SettingsDep,
    storage: StorageDep,
    tenant: TenantDep,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> ArtifactPage:
    _owned(session, tenant, job_id)
    rows = artifacts.list_for_job(session=session, job_id=job_id, after=cursor, limit=limit + 1)
    items = [
        ArtifactOut(
            name=a.name,
            size=a.size,
            content_type=a.content_type,
            url=storage.presign(a.key, settings.artifact_url_ttl_s),
        )
        for a in rows[:limit]
    ]
    return ArtifactPage(
        items=items, next_cursor=rows[limit - 1].name if len(rows) > limit else None
    )


def _owned(session: Session, tenant: Tenant, job_id: str) -> None:
    queries.get_job(session=session, tenant=tenant, job_id=job_id)
