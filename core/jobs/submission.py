"""Submitting a job: ``submit()`` is what ``POST /v1/jobs`` calls.

    check the body against the registry, the webhook policy and the tenant's quotas
    → insert_job: the job, its ``queued`` event, its outbox row and the Idempotency-Key's
      row, in ONE statement on Postgres (one round trip, one commit) — or, when the key is
      taken, answer the job it made (``Submitted.replayed``)
    → hand the job to the API's dispatcher, which publishes the task and marks the outbox
      row off the request path (the outbox row covers a broker failure).

Who commits: ``submit()`` is a unit of work and commits itself (the route holds no
transaction logic). On Postgres its one write, the ``insert_job`` statement, is sent on an
autocommit connection as a transaction of its own (atomic as one statement; one round
trip); its reads (registry checks, replays) go through the session. ``insert_job`` without
that engine, and ``publish`` without a dispatcher (its outbox mark), join the caller's
transaction and never commit (service-made jobs, the worker's re-queue, the reconciler).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine, Table, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core import queue, quotas
from core.config import Settings
from core.db import autocommit_engine, new_id, utcnow
from core.errors import IdempotencyConflict, SynthgenError
from core.jobs import admission, group_insert, idempotency, outbox
from core.jobs.orm import IdempotencyKey, Job, JobEvent, Outbox
from core.jobs.outbox import Dispatcher
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
    dispatcher: Dispatcher | None = None,
) -> Submitted:
    """Create and publish a job, or answer the one an earlier request with the same
    ``idempotency_key`` created. Commits (see the module's docstring)."""
    request = job_in.model_dump(mode="json")
    claim = None
    if idempotency_key is not None:
        fingerprint = idempotency.fingerprint_of(request)
        claim = idempotency.Claim(idempotency_key, fingerprint, settings.idempotency_ttl_s)
    try:
        model_version_id = check(session=session, settings=settings, tenant=tenant, job_in=job_in)
        # The checks fill what the registry decides (an evaluate's default metrics): the
        # job stores what it will run; the key's fingerprint stays the body as sent.
        request = job_in.model_dump(mode="json")
        for _ in range(3):
            job = insert_job(
                session=session,
                tenant=tenant,
                kind=JobKind(job_in.kind),
                request=request,
                model_version_id=model_version_id,
                claim=claim,
                max_queued=settings.max_queued_jobs,
                autocommit=autocommit_engine(settings.database_url),
            )
            if job is not None:
                break
            assert claim is not None  # noqa: S101 - only a taken key writes nothing
            replayed = idempotency.replay(session=session, tenant=tenant, claim=claim)
            if replayed is not None:
                return Submitted(get_job(session=session, tenant=tenant, job_id=replayed), True)
            # The key was free or expired (and deleted): commit that before the retry's
            # insert, which would otherwise wait on this very transaction's delete.
            session.commit()
        else:
            raise IdempotencyConflict("Idempotency-Key is contended; retry shortly.")
        if session.in_transaction():  # SQLite's rows; on Postgres the statement committed
            session.commit()
    except SynthgenError:
        session.rollback()
        # A retry of a request that was accepted gets its job even if it would be refused
        # now (its quota used up by then, its model deleted...).
        if claim is None:
            raise
        replayed = idempotency.replay(session=session, tenant=tenant, claim=claim)
        if replayed is not None:
            return Submitted(get_job(session=session, tenant=tenant, job_id=replayed), True)
        raise
    except BaseException:
        session.rollback()
        raise
    publish(session=session, settings=settings, job=job, dispatcher=dispatcher)
    if dispatcher is None:
        session.commit()  # the outbox mark publish() wrote
    return Submitted(job, False)


def create_job(*, session: Session, settings: Settings, tenant: Tenant, job_in: AnyJobIn) -> Job:
    """``submit()`` less the Idempotency-Key, the commit and the publish: the checks and
    the job's rows in the caller's transaction (tests, benchmarks, service-made jobs)."""
    model_version_id = check(session=session, settings=settings, tenant=tenant, job_in=job_in)
    job = insert_job(
        session=session,
        tenant=tenant,
        kind=JobKind(job_in.kind),
        request=job_in.model_dump(mode="json"),
        model_version_id=model_version_id,
        max_queued=settings.max_queued_jobs,
    )
    assert job is not None  # noqa: S101 - None only when a claim's key is taken
    return job


def service_job(*, session: Session, tenant: Tenant, kind: JobKind, request: dict[str, Any]) -> Job:
    """A job the service makes itself (a dataset's validation, a model's import): its
    rows in the caller's transaction, no user checks, no key (the caller commits, then
    publishes)."""
    job = insert_job(session=session, tenant=tenant, kind=kind, request=request)
    assert job is not None  # noqa: S101 - None only when a claim's key is taken
    return job


def check(*, session: Session, settings: Settings, tenant: Tenant, job_in: AnyJobIn) -> str | None:
    """What the body asks that this tenant may not have (422/404/429); returns the model
    version it runs on. The queued-jobs quota is checked by ``insert_job``'s statement."""
    webhooks.check_url(job_in.webhook, settings)
    model_version_id = admission.check(
        session=session, tenant=tenant, job_in=job_in, settings=settings
    )
    quotas.check_usage(session=session, settings=settings, tenant_id=tenant.id)
    return model_version_id


_JOBS = cast(Table, Job.__table__)
_JOB_EVENTS = cast(Table, JobEvent.__table__)
_OUTBOX = cast(Table, Outbox.__table__)
_KEYS = cast(Table, IdempotencyKey.__table__)
_JOB_COLUMNS = [c.key for c in _JOBS.columns]


def insert_job(
    *,
    session: Session,
    tenant: Tenant,
    kind: JobKind,
    request: dict[str, Any],
    model_version_id: str | None = None,
    claim: idempotency.Claim | None = None,
    max_queued: int = 0,
    autocommit: Engine | None = None,
) -> Job | None:
    """Insert a queued job with its first event, its outbox row and, with a ``claim``, its
    Idempotency-Key's row, in the caller's transaction (who then commits and publishes).
    Given an ``autocommit`` engine (core.db.autocommit_engine) on Postgres, the rows go in
    a statement of their own instead, committed when this returns, shared with concurrent
    submits of this process (core/jobs/group_insert.py; ``submit()``). On SQLite they
    stay in the session's transaction.

    Returns None, having written nothing, when the claim's key is taken already. Raises
    QuotaExceeded when the tenant has ``max_queued`` queued jobs (0: no cap). Jobs the
    service makes itself come here directly; users' jobs through ``submit()``.
    """
    values: dict[str, Any] = dict.fromkeys(_JOB_COLUMNS)
    values.update(
        id=new_id(),
        tenant_id=tenant.id,
        kind=kind,
        status=JobStatus.queued,
        request=request,
        model_version_id=model_version_id,
        attempts=0,
        preemptions=0,
        created_at=utcnow(),
    )
    # ``job`` stays a transient object holding exactly what was written; its id is made
    # here, so nothing has to come back from the database but two figures.
    job = Job(**values)
    if session.get_bind().dialect.name != "postgresql":
        return _insert_rows(session, job, claim, max_queued)
    row = group_insert.Row(
        id=job.id,
        tenant_id=job.tenant_id,
        kind=str(kind),
        request=request,
        model_version_id=model_version_id,
        created_at=job.created_at,
        key=claim.key if claim else None,
        fingerprint=claim.fingerprint if claim else None,
        expires_at=claim.expires_at(job.created_at) if claim else None,
        queue=queue.queue_for(kind, request),
    )
    if autocommit is not None:
        inserter = group_insert.for_engine(
            autocommit, max_queued=max_queued, task_name=queue.RUN_JOB
        )
        queued, written = inserter.insert(row)
    else:
        values = group_insert.params([row], max_queued=max_queued, task_name=queue.RUN_JOB)
        result = session.connection().exec_driver_sql(group_insert.SQL, values)
        queued, written = group_insert.answers(result.all())[job.id]
    quotas.check_queued(settings_cap=max_queued, queued=queued)
    return job if written else None


def _insert_rows(
    session: Session, job: Job, claim: idempotency.Claim | None, max_queued: int
) -> Job | None:
    """SQLite (the embedded stack): the same rows as statements in one savepoint."""
    if max_queued:
        queued = session.scalar(
            select(func.count()).select_from(
                select(Job.id)
                .where(Job.tenant_id == job.tenant_id, Job.status == JobStatus.queued)
                .limit(max_queued)
                .subquery()
            )
        )
        quotas.check_queued(settings_cap=max_queued, queued=int(queued or 0))
    now = job.created_at
    kind = JobKind(job.kind)
    try:
        with session.begin_nested():
            session.execute(insert(_JOBS).values({c: getattr(job, c) for c in _JOB_COLUMNS}))
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
            if claim is not None:
                session.execute(
                    insert(_KEYS).values(
                        tenant_id=job.tenant_id,
                        key=claim.key,
                        fingerprint=claim.fingerprint,
                        job_id=job.id,
                        created_at=now,
                        expires_at=claim.expires_at(now),
                    )
                )
    except IntegrityError:
        if claim is None:
            raise
        return None  # the key is taken: the savepoint took the job's rows back with it
    return job


def publish(
    *, session: Session, settings: Settings, job: Job, dispatcher: Dispatcher | None = None
) -> bool:
    """Send the job's task; on broker failure leave the outbox row for the reconciler.

    With a ``dispatcher`` (the API's) the task is sent and the outbox row marked from its
    thread, soon after this returns (core/jobs/outbox.py says why that is safe); without
    one the task is sent now and the mark joins the caller's transaction. True: sent, or
    handed to the dispatcher.
    """
    queue_base = queue.queue_for(JobKind(job.kind), job.request)
    if dispatcher is not None:
        dispatcher.dispatch(job.id, queue_base)
        return True
    try:
        queue.publish_job(settings, job.id, queue_base)
    except Exception:  # noqa: BLE001 - any broker failure: the outbox retries it
        return False
    outbox.mark_published(session=session, job_ids=[job.id])
    return True
