"""Submitting a job: ``submit()`` is what ``POST /v1/jobs`` calls.

    reserve the Idempotency-Key (a replay ends here with the first job)
    → create_job: check the body against the registry and quotas, insert the job, its
      ``queued`` event and its outbox row, link the key          (one transaction)
    → commit → publish the task (the outbox row covers a broker failure).

Who commits: ``submit()`` is a unit of work — it commits the job's transaction itself
(and, through idempotency, the key's claim), so the route holds no transaction logic.
``create_job``, ``mark_published`` and ``publish`` join the caller's transaction and never
commit (the worker's re-queue and the reconciler call them inside a ``session_scope``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, insert, text, update
from sqlalchemy.orm import Session

from core import queue, quotas
from core.config import Settings
from core.db import new_id, utcnow
from core.jobs import admission, idempotency
from core.jobs.orm import Job, JobEvent, Outbox
from core.jobs.outbox import OutboxMarker
from core.jobs.queries import get_job
from core.jobs.schemas import AnyJobIn
from core.jobs.states import JobKind, JobStatus
from core.tenants.orm import Tenant
from core.webhooks import service as webhooks


@dataclass(frozen=True)
class Submitted:
    job: Job
    replayed: bool  # True: an Idempotency-Key replay answered with the job it made first


def submit(
    *,
    session: Session,
    settings: Settings,
    tenant: Tenant,
    job_in: AnyJobIn,
    idempotency_key: str | None = None,
    marker: OutboxMarker | None = None,
) -> Submitted:
    """Create and publish a job, or answer the one an earlier request with the same
    ``idempotency_key`` created. Commits (see the module's docstring)."""
    if idempotency_key is not None:
        replay = idempotency.reserve(
            session=session,
            tenant=tenant,
            key=idempotency_key,
            fingerprint=idempotency.fingerprint(job_in),
            ttl_s=settings.idempotency_ttl_s,
        )
        if replay is not None:
            return Submitted(get_job(session=session, tenant=tenant, job_id=replay), True)
    try:
        job = create_job(
            session=session,
            settings=settings,
            tenant=tenant,
            job_in=job_in,
            idempotency_key=idempotency_key,
        )
        session.commit()
    except BaseException:
        session.rollback()
        if idempotency_key is not None:
            idempotency.release(session=session, tenant=tenant, key=idempotency_key)
        raise
    publish(session=session, settings=settings, job=job, marker=marker)
    if marker is None:
        session.commit()  # the outbox mark publish() wrote
    return Submitted(job, False)


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
    """Validate against the registry and the tenant's quotas, then insert job + event +
    outbox (+ key link) in the caller's transaction."""
    webhooks.check_url(job_in.webhook, settings)
    model_version_id = admission.check(
        session=session, tenant=tenant, job_in=job_in, settings=settings
    )
    quotas.check_submit(session=session, settings=settings, tenant_id=tenant.id)
    kind = JobKind(job_in.kind)
    now = utcnow()
    job = Job(
        id=new_id(),
        tenant_id=tenant.id,
        kind=kind,
        status=JobStatus.queued,
        request=job_in.model_dump(mode="json"),
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
            job_id=job.id, task_name=queue.RUN_JOB, queue=queue.QUEUE_FOR_KIND[kind], created_at=now
        )
    )
    if idempotency_key is not None:
        idempotency.link(session=session, tenant=tenant, key=idempotency_key, job_id=job.id)
    return job


def mark_published(*, session: Session, job_id: str) -> None:
    """Set the outbox row's ``published_at``. Turns the transaction's synchronous commit
    off (below): call it in a transaction that holds nothing else."""
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
    in a transaction (core/jobs/outbox.py says why that is safe); without one the mark
    joins the caller's transaction.
    """
    try:
        queue.publish_job(settings, job.id, queue.QUEUE_FOR_KIND[JobKind(job.kind)])
    except Exception:  # noqa: BLE001 - any broker failure: the outbox retries it
        return False
    if marker is not None:
        marker.mark(job.id)
        return True
    mark_published(session=session, job_id=job.id)
    return True
