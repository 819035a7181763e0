"""Job events: ``start``, ``progress``, ``output``, ``completed``.

Each is a ``job_events`` row written in the transaction of the change it describes (a
state change, a progress write, an output), so no event is lost or invented when a
process dies between the two. The row keeps the job object as it was then; served (SSE,
webhooks, ``Prefer: wait``) it is that job object plus ``type`` and ``event_id``.

The same transaction queues the job's webhook delivery and, on Postgres, a NOTIFY on
``CHANNEL`` that Postgres sends only if the transaction commits: the API's one listener
per process (api/hub.py) hears it and fans the event out to open streams.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from core import db
from core.config import Settings
from core.jobs.orm import Job, JobEvent
from core.jobs.presentation import to_out, urls
from core.jobs.states import TERMINAL, JobStatus
from core.webhooks import service as webhooks

CHANNEL = "synthgen_job_events"
ID_PREFIX = "evt_"


class EventType(StrEnum):
    queued = "queued"  # internal: written on submit and re-queue, never sent
    start = "start"
    progress = "progress"
    output = "output"
    completed = "completed"


def for_status(status: JobStatus) -> EventType:
    if status is JobStatus.running:
        return EventType.start
    return EventType.completed if status in TERMINAL else EventType.queued


_EVENTS = cast(Table, JobEvent.__table__)


def record(
    *,
    session: Session,
    job_id: str,
    type: EventType,
    output: dict[str, Any] | None = None,
) -> int:
    """Write one event of ``job_id`` (with the job as it is now in this transaction)."""
    # populate_existing: the caller may hold this job from before its UPDATE.
    job = session.scalars(
        select(Job).where(Job.id == job_id).execution_options(populate_existing=True)
    ).one()
    payload = None
    if type is not EventType.queued:
        payload = snapshot(job)
        if output is not None:
            payload["output"] = output
    event_id = session.execute(
        insert(_EVENTS)
        .values(
            job_id=job_id, status=job.status, type=type, payload=payload, created_at=db.utcnow()
        )
        .returning(_EVENTS.c.id)
    ).scalar_one()
    if type is EventType.queued:
        return int(event_id)
    webhooks.queue_delivery(session=session, job=job, event_id=event_id, event=type)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(CHANNEL, f"{job_id} {event_id}")))
    return int(event_id)


def snapshot(job: Job) -> dict[str, Any]:
    return to_out(job).model_dump(mode="json", exclude={"request", "urls"})


def render(event: JobEvent, *, request: dict[str, Any], base_url: str) -> dict[str, Any]:
    """What users receive: the job object then, plus ``type``, ``event_id`` and
    ``event_at`` (when it happened: a replayed stream's log shows the event's time, not
    the reader's)."""
    assert event.payload is not None, "queued rows are never served"
    return {
        **event.payload,
        "request": request,
        "urls": urls(event.job_id, base_url),
        "type": event.type,
        "event_id": public_id(event.id),
        "event_at": db.as_utc(event.created_at).isoformat(),
    }


def public_id(event_id: int) -> str:
    return f"{ID_PREFIX}{event_id}"


def parse_id(value: str | None) -> int:
    """The numeric id of a ``Last-Event-ID``; 0 (from the start) for none or a foreign one."""
    digits = (value or "").strip().removeprefix(ID_PREFIX)
    return int(digits) if digits.isdigit() else 0


def after(*, session: Session, job_id: str, after_id: int) -> list[JobEvent]:
    """The job's served events after ``after_id``, in order."""
    return list(
        session.scalars(
            select(JobEvent)
            .where(
                JobEvent.job_id == job_id,
                JobEvent.id > after_id,
                JobEvent.type != EventType.queued,
                JobEvent.payload.is_not(None),
            )
            .order_by(JobEvent.id)
        )
    )


def by_ids(*, session: Session, ids: list[int]) -> list[JobEvent]:
    query = select(JobEvent).where(JobEvent.id.in_(ids)).order_by(JobEvent.id)
    return list(session.scalars(query))


def newer_than(*, session: Session, last_id: int) -> list[tuple[int, str]]:
    """(id, job_id) of every event after ``last_id`` (the SQLite poller's one query)."""
    rows = session.execute(
        select(JobEvent.id, JobEvent.job_id).where(JobEvent.id > last_id).order_by(JobEvent.id)
    )
    return [(int(i), str(j)) for i, j in rows]


def last_id(*, session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(JobEvent.id), 0))) or 0)


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """``db.session_scope`` that, once committed, sends the webhook deliveries its events
    queued (a delivery whose message is lost is found by the reconciler's sweep)."""
    with db.session_scope(settings.database_url) as session:
        yield session
    webhooks.send_queued(settings=settings, session=session)
