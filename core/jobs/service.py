"""Jobs: submit (with idempotency and the outbox), read, list, cancel, and
``transition()``, the only writer of ``Job.status``."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, and_, insert, or_, select, text, update
from sqlalchemy.orm import Session

from core import queue, quotas
from core.config import Settings
from core.db import new_id, utcnow
from core.errors import (
    InvalidRequest,
    InvalidTransition,
    JobNotFound,
)
from core.jobs import admission, events, idempotency

# The idempotency functions are part of this module's interface (the submit route, the
# reconciler, tests).
from core.jobs.idempotency import (  # noqa: F401
    ABANDONED_CLAIM,
    fingerprint,
    purge_expired_idempotency_keys,
    release_idempotency_key,
    reserve_idempotency_key,
)
from core.jobs.orm import Job, JobEvent, Outbox
from core.jobs.outbox import OutboxMarker
from core.jobs.schemas import AnyJobIn, JobOut
from core.jobs.states import TERMINAL, JobKind, JobStatus, sources_of
from core.tenants.orm import Tenant
from core.webhooks import service as webhooks

# -- state machine writes ---------------------------------------------------------------


def transition(*, session: Session, job_id: str, target: JobStatus, **fields: Any) -> None:
    """Move a job to ``target`` with a compare-and-set UPDATE (``WHERE status IN sources``).

    Raises InvalidTransition when the row was not in a state that may reach ``target``
    (a redelivered message, a cancel racing a finish...): the caller decides what that means.
    """
    now = utcnow()
    values: dict[str, Any] = {"status": target, **fields}
    if target is JobStatus.running:
        values.setdefault("started_at", now)
        values.setdefault("heartbeat_at", now)
    if target in TERMINAL:
        values.setdefault("completed_at", now)
    if target is JobStatus.queued:
        values.setdefault("heartbeat_at", None)
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(sources_of(target)))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        current = session.scalar(select(Job.status).where(Job.id == job_id))
        if current is None:
            raise JobNotFound(f"job {job_id} does not exist")
        raise InvalidTransition(f"job {job_id} is {current}; it cannot become {target}")
    events.record(session=session, job_id=job_id, type=events.for_status(target))


def try_transition(*, session: Session, job_id: str, target: JobStatus, **fields: Any) -> bool:
    try:
        with session.begin_nested():
            transition(session=session, job_id=job_id, target=target, **fields)
    except InvalidTransition:
        return False
    return True


def write_progress(*, session: Session, job_id: str, progress: dict[str, Any]) -> bool:
    """Store progress and beat the heartbeat; False when the job is no longer running."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.running)
        .values(progress=progress, heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def heartbeat(*, session: Session, job_id: str) -> bool:
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.running)
        .values(heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def status_of(*, session: Session, job_id: str) -> JobStatus | None:
    value = session.scalar(select(Job.status).where(Job.id == job_id))
    return JobStatus(value) if value is not None else None


def failure_of(*, session: Session, job_id: str) -> dict[str, str] | None:
    """Why a job ended without succeeding ({type, message}), or None while it is queued
    or running, or once it succeeded. For rows a service job was to finish (a dataset
    being validated, a model being imported) whose job can no longer do so."""
    job = session.get(Job, job_id)
    if job is not None and job.status not in (JobStatus.failed, JobStatus.canceled):
        return None
    if job is not None and job.status == JobStatus.failed and job.error:
        return {"type": str(job.error["type"]), "message": str(job.error["message"])}
    return {"type": "Canceled", "message": f"job {job_id} was canceled before it finished"}


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every timestamp we write is UTC.
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


# -- submit -------------------------------------------------------------------------------


_JOBS = cast(Table, Job.__table__)
_JOB_EVENTS = cast(Table, JobEvent.__table__)
_OUTBOX = cast(Table, Outbox.__table__)


def create_job(
    *,
    session: Session,
    settings: Settings,
    tenant: Tenant,
    job_in: AnyJobIn,
    idempotency_key: str | None = None,
) -> Job:
    """Validate against the registry and the tenant's quotas, then insert job + outbox
    (+ key link) in one transaction."""
    webhooks.check_url(job_in.webhook, settings)
    model_version_id = admission.check(
        session=session, tenant=tenant, job_in=job_in, settings=settings
    )
    quotas.check_submit(session=session, settings=settings, tenant_id=tenant.id)
    job = insert_job(
        session=session,
        tenant=tenant,
        kind=JobKind(job_in.kind),
        request=job_in.model_dump(mode="json"),
        model_version_id=model_version_id,
    )
    if idempotency_key is not None:
        idempotency.link(session=session, tenant=tenant, key=idempotency_key, job_id=job.id)
    return job


def insert_job(
    *,
    session: Session,
    tenant: Tenant,
    kind: JobKind,
    request: dict[str, Any],
    model_version_id: str | None = None,
) -> Job:
    """Insert a queued job with its first event and outbox row (the caller commits, then
    publishes). Jobs the service makes itself (dataset validation, model import) come
    here directly; users' jobs through :func:`create_job`."""
    now = utcnow()
    job = Job(
        id=new_id(),
        tenant_id=tenant.id,
        kind=kind,
        status=JobStatus.queued,
        request=request,
        model_version_id=model_version_id,
        attempts=0,
        preemptions=0,
        created_at=now,
    )
    # Core inserts, not the ORM's unit of work: the submit path is latency-critical
    # (bench/submission.py) and these three rows need none of its bookkeeping. The id
    # is made here, so nothing has to come back from the database. ``job`` stays a
    # transient object holding exactly what was written.
    session.execute(insert(_JOBS).values({c.key: getattr(job, c.key) for c in _JOBS.columns}))
    session.execute(
        insert(_JOB_EVENTS).values(job_id=job.id, status=JobStatus.queued, created_at=now)
    )
    session.execute(
        insert(_OUTBOX).values(
            job_id=job.id,
            task_name=queue.RUN_JOB,
            queue=queue.queue_for(kind, job.request),
            created_at=now,
        )
    )
    return job


def mark_published(*, session: Session, job_id: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # Losing this row's update in a crash costs only a second message, which the
        # runner's compare-and-set start ignores, so it needn't wait for the WAL flush
        # (a quarter of the submit path's time; bench/submission.py).
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    session.execute(
        update(Outbox)
        .where(Outbox.job_id == job_id, Outbox.published_at.is_(None))
        .values(published_at=utcnow())
    )


def publish(
    *, session: Session, settings: Settings, job: Job, marker: OutboxMarker | None = None
) -> bool:
    """Send the job's task; on broker failure leave the outbox row for the reconciler.

    With a ``marker`` the outbox row is marked published in its next batch rather than
    in a transaction of its own (core/jobs/outbox.py says why that is safe).
    """
    try:
        queue.publish_job(settings, job.id, queue.queue_for(JobKind(job.kind), job.request))
    except Exception:  # noqa: BLE001 - any broker failure: the outbox retries it
        return False
    if marker is not None:
        marker.mark(job.id)
        return True
    mark_published(session=session, job_id=job.id)
    session.commit()
    return True


# -- read ---------------------------------------------------------------------------------


def get_job(*, session: Session, tenant: Tenant, job_id: str) -> Job:
    job = session.scalar(select(Job).where(Job.id == job_id, Job.tenant_id == tenant.id))
    if job is None:
        raise JobNotFound(f"no job {job_id} for this tenant")
    return job


class Listed(Protocol):
    """A row listed newest first with cursor pagination (jobs, datasets)."""

    id: Any
    created_at: Any


def encode_cursor(job: Listed) -> str:
    raw = f"{_aware(job.created_at).isoformat()}|{job.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, job_id = raw.split("|", 1)
        return datetime.fromisoformat(created), job_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("cursor: not a cursor this API returned", field="cursor") from exc


def list_jobs(
    *,
    session: Session,
    tenant: Tenant,
    status: JobStatus | None = None,
    kind: JobKind | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Job], str | None]:
    query = select(Job).where(Job.tenant_id == tenant.id)
    if status is not None:
        query = query.where(Job.status == status)
    if kind is not None:
        query = query.where(Job.kind == kind)
    if cursor is not None:
        created, job_id = decode_cursor(cursor)
        if created.tzinfo is not None and session.get_bind().dialect.name == "sqlite":
            created = created.replace(tzinfo=None)
        query = query.where(
            or_(Job.created_at < created, and_(Job.created_at == created, Job.id < job_id))
        )
    rows = list(
        session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1))
    )
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


def cancel_job(*, session: Session, tenant: Tenant, job_id: str) -> Job:
    """queued or running → canceled; a running job's worker stops at its next step.

    Idempotent: cancelling a canceled job answers the job as it is (a client retrying a
    cancel whose answer it lost must not see an error). A job that already succeeded or
    failed cannot be canceled.
    """
    job = get_job(session=session, tenant=tenant, job_id=job_id)
    if job.status != JobStatus.canceled:
        try:
            transition(session=session, job_id=job.id, target=JobStatus.canceled)
        except InvalidTransition:
            session.refresh(job)  # a concurrent cancel may have won the race
            if job.status != JobStatus.canceled:
                raise InvalidTransition(
                    f"job {job.id} already ended ({job.status}); only queued or running "
                    "jobs can be canceled"
                ) from None
    session.refresh(job)
    return job


def to_out(job: Job, *, base_url: str = "") -> JobOut:
    prefix = f"{base_url}/v1/jobs/{job.id}"
    return JobOut.model_validate(
        {
            "id": job.id,
            "kind": job.kind,
            "status": job.status,
            "request": job.request,
            "progress": job.progress,
            "result": job.result,
            "error": job.error,
            "created_at": _aware(job.created_at),
            "started_at": _aware(job.started_at) if job.started_at else None,
            "completed_at": _aware(job.completed_at) if job.completed_at else None,
            "attempts": job.attempts,
            "preemptions": job.preemptions,
            "urls": {
                "get": prefix,
                "cancel": f"{prefix}/cancel",
                "artifacts": f"{prefix}/artifacts",
            },
        }
    )
