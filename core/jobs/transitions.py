"""Job state changes: ``transition()`` is the only writer of ``Job.status``.

Who commits: nothing here. Every function joins the caller's transaction (a route's
session, the worker's ``session_scope``), so a state change, its event row
(core/jobs/events.py) and whatever else the caller writes commit together or not at all.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core import upload_lifecycle
from core.db import utcnow
from core.errors import InvalidTransition, JobNotFound
from core.jobs import events
from core.jobs.orm import Job
from core.jobs.queries import get_job
from core.jobs.states import TERMINAL, JobStatus, sources_of
from core.tenants.orm import Tenant


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
    if target in upload_lifecycle.ENDED_WITHOUT_SUCCESS:
        # A validation or import job's end settles its row in this same transaction.
        upload_lifecycle.job_ended(
            session=session, job_id=job_id, status=target, error=fields.get("error")
        )


def try_transition(*, session: Session, job_id: str, target: JobStatus, **fields: Any) -> bool:
    """``transition()`` in a savepoint; False (and nothing written) when it may not happen."""
    try:
        with session.begin_nested():
            transition(session=session, job_id=job_id, target=target, **fields)
    except InvalidTransition:
        return False
    return True


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
