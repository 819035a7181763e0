"""Reading jobs: one job of a tenant, a tenant's jobs newest first with a cursor (the
cursor codec other listings share), and why a job ended.

Who commits: nothing here; these only read, in the caller's session.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session

from core.db import as_utc
from core.errors import InvalidRequest, JobNotFound
from core.jobs.orm import Job
from core.jobs.states import JobKind, JobStatus
from core.tenants.orm import Tenant


def get_query(*, tenant_id: str, job_id: str) -> Select[Job]:
    """The statement ``get_job`` runs (bench/job_reads.py and a test EXPLAIN it)."""
    return select(Job).where(Job.id == job_id, Job.tenant_id == tenant_id)


def get_job(*, session: Session, tenant: Tenant, job_id: str) -> Job:
    job = session.scalar(get_query(tenant_id=tenant.id, job_id=job_id))
    if job is None:
        raise JobNotFound(f"no job {job_id} for this tenant")
    return job


def status_of(*, session: Session, job_id: str) -> JobStatus | None:
    value = session.scalar(select(Job.status).where(Job.id == job_id))
    return JobStatus(value) if value is not None else None


class Listed(Protocol):
    """A row listed newest first with cursor pagination (jobs, datasets, imports)."""

    id: Any
    created_at: Any


def encode_cursor(row: Listed) -> str:
    raw = f"{as_utc(row.created_at).isoformat()}|{row.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, job_id = raw.split("|", 1)
        return datetime.fromisoformat(created), job_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("cursor: not a cursor this API returned", field="cursor") from exc


def newest_first_query(
    query: Select[Any], model: Any, *, after: tuple[datetime, str] | None, limit: int
) -> Select[Any]:
    """``query``'s rows newest first, after the ``(created_at, id)`` of a cursor."""
    if after is not None:
        # One row-value comparison, which an index on (…, created_at, id) takes as its
        # range (an OR of two conditions would be a filter over every newer row).
        query = query.where(tuple_(model.created_at, model.id) < tuple_(*after))
    return query.order_by(model.created_at.desc(), model.id.desc()).limit(limit)


def newest_first(
    *, session: Session, query: Select[Any], model: Any, cursor: str | None, limit: int
) -> tuple[list[Any], str | None]:
    """One page of ``query``'s ``model`` rows, newest first, after ``cursor``; the next
    page's cursor, or None at the end. Every listing of the API pages this way."""
    after = None
    if cursor is not None:
        created, last_id = decode_cursor(cursor)
        if created.tzinfo is not None and session.get_bind().dialect.name == "sqlite":
            created = created.replace(tzinfo=None)  # SQLite stores them naive (UTC)
        after = (created, last_id)
    rows = list(session.scalars(newest_first_query(query, model, after=after, limit=limit + 1)))
    return rows[:limit], encode_cursor(rows[limit - 1]) if len(rows) > limit else None


def _tenant_jobs(tenant_id: str, status: JobStatus | None, kind: JobKind | None) -> Select[Job]:
    query = select(Job).where(Job.tenant_id == tenant_id)
    if status is not None:
        query = query.where(Job.status == status)
    if kind is not None:
        query = query.where(Job.kind == kind)
    return query


def list_query(
    *,
    tenant_id: str,
    status: JobStatus | None = None,
    kind: JobKind | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> Select[Job]:
    """The statement ``list_jobs`` runs, ``limit`` being one more than its page
    (bench/job_reads.py and a test EXPLAIN it): ix_jobs_tenant_created, or with a status
    ix_jobs_tenant_status_created, serves it in order."""
    return newest_first_query(_tenant_jobs(tenant_id, status, kind), Job, after=after, limit=limit)


def list_jobs(
    *,
    session: Session,
    tenant: Tenant,
    status: JobStatus | None = None,
    kind: JobKind | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Job], str | None]:
    query = _tenant_jobs(tenant.id, status, kind)
    return newest_first(session=session, query=query, model=Job, cursor=cursor, limit=limit)
