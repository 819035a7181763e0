from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, new_id, utcnow
from core.jobs.states import JobKind, JobStatus


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        # A tenant's jobs newest first (GET /v1/jobs), and of one status (?status=, and the
        # queued-jobs quota counted at submit): core/jobs/queries.py, core/jobs/submission.py.
        Index("ix_jobs_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_jobs_tenant_status_created", "tenant_id", "status", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[JobKind] = mapped_column(String(16), index=True)
    status: Mapped[JobStatus] = mapped_column(String(16), index=True, default=JobStatus.queued)
    request: Mapped[dict[str, Any]]
    progress: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # The model version a generate/evaluate job reads, resolved once at submit time so
    # that "latest" cannot change under a queued job.
    model_version_id: Mapped[str | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"), default=None
    )
    # Runs started (each claim counts one), and of those the ones handed back on a
    # worker's warm shutdown (SIGTERM): a preemption is not a failure, so the reconciler
    # gives a job up after ``attempts - preemptions`` lost workers, not ``attempts``.
    attempts: Mapped[int] = mapped_column(default=0)
    preemptions: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    heartbeat_at: Mapped[datetime | None] = mapped_column(default=None)


class JobEvent(Base):
    """What happened to a job, in order: every state change, throttled progress and each
    output (core/jobs/events.py). Webhooks and the event stream are served from these."""

    __tablename__ = "job_events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))  # the job's status after the event
    # The submit path's Core insert leaves ``type`` to this default (core/jobs/events.py).
    type: Mapped[str] = mapped_column(String(16), default="queued")
    # The job object at that moment, less ``request`` and ``urls`` (which never change
    # and are added when the event is served); None for the internal ``queued`` rows.
    payload: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Outbox(Base):
    """A task to publish, written in the same transaction as its job (transactional outbox):
    if the broker is down at submit time the reconciler publishes it later."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    task_name: Mapped[str] = mapped_column(String(100))
    queue: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(default=None, index=True)


class IdempotencyKey(Base):
    """IETF draft-ietf-httpapi-idempotency-key-header: a key remembers its request's
    fingerprint and, once done, the job it created; kept ``idempotency_ttl_s``."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("tenant_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), default=None
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
