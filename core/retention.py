"""Retention: ended jobs older than ``retention_days`` are removed, rows and artifacts,
by a scheduled sweep (the ``retention`` beat task, every ``retention_interval_s``).

- An expired job is deleted with everything under ``jobs/{id}/`` in storage; its events,
  artifact rows and outbox rows go with its row.
- A train job whose model version still exists keeps its row and its ``model/`` files
  (the version's weights live there); its other files (checkpoint, grid, curve) go.
- A failed or canceled job's partial outputs are deleted by the worker when it ends; if
  the store was unreachable then, this sweep deletes them (jobs ended in the last day;
  older ones go with the job at expiry).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Exists

from core.artifacts.orm import Artifact
from core.config import Settings
from core.db import session_scope, utcnow
from core.errors import StorageError
from core.jobs.orm import Job
from core.jobs.states import TERMINAL, JobStatus
from core.model_versions.orm import ModelVersion
from core.storage import Storage

log = logging.getLogger("synthgen.retention")
MODEL_DIR = "model"
ORPHAN_WINDOW = timedelta(days=1)


def sweep(
    *, settings: Settings, storage: Storage, now: datetime | None = None, batch: int = 500
) -> dict[str, int]:
    """One pass; returns how many jobs were deleted, trimmed and cleaned of orphans."""
    counts = {"deleted": 0, "trimmed": 0, "orphans": 0}
    if not settings.retention_days:
        return counts
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.retention_days)
    with session_scope(settings.database_url) as session:
        expired = _expired(session, cutoff, batch)
        to_trim = _expired_with_version(session, cutoff, batch)
        recent_ends = list(
            session.scalars(
                select(Job.id).where(
                    Job.status.in_([JobStatus.failed, JobStatus.canceled]),
                    Job.completed_at >= now - ORPHAN_WINDOW,
                )
            )
        )
    for job_id in expired:
        if _delete_objects(storage, job_id, keep=None):
            with session_scope(settings.database_url) as session:
                session.execute(delete(Job).where(Job.id == job_id))
            counts["deleted"] += 1
    for job_id in to_trim:
        if _delete_objects(storage, job_id, keep=MODEL_DIR):
            with session_scope(settings.database_url) as session:
                session.execute(
                    delete(Artifact).where(
                        Artifact.job_id == job_id, ~Artifact.name.startswith(f"{MODEL_DIR}/")
                    )
                )
            counts["trimmed"] += 1
    for job_id in recent_ends:
        if storage.list(f"jobs/{job_id}/") and _delete_objects(storage, job_id, keep=None):
            counts["orphans"] += 1
    return counts


def _has_version() -> Exists:
    return exists().where(ModelVersion.train_job_id == Job.id)


def _expired(session: Session, cutoff: datetime, batch: int) -> list[str]:
    return list(
        session.scalars(
            select(Job.id)
            .where(Job.status.in_(TERMINAL), Job.completed_at < cutoff, ~_has_version())
            .limit(batch)
        )
    )


def _expired_with_version(session: Session, cutoff: datetime, batch: int) -> list[str]:
    """Expired train jobs whose version exists and that still hold more than its files."""
    extra_files = exists().where(
        Artifact.job_id == Job.id, ~Artifact.name.startswith(f"{MODEL_DIR}/")
    )
    return list(
        session.scalars(
            select(Job.id)
            .where(Job.status.in_(TERMINAL), Job.completed_at < cutoff, _has_version())
            .where(extra_files)
            .limit(batch)
        )
    )


def _delete_objects(storage: Storage, job_id: str, *, keep: str | None) -> bool:
    """Delete ``jobs/{job_id}/`` but the ``keep`` folder; False when the store failed (the
    row stays, so the next sweep tries again)."""
    prefix = f"jobs/{job_id}/"
    try:
        # Top-level entries: "images/" (a folder) or "grid.png" (a file).
        entries = {
            name.split("/", 1)[0] + ("/" if "/" in name else "")
            for name in (obj.key[len(prefix) :] for obj in storage.list(prefix))
        }
        for entry in sorted(entries - {f"{keep}/"}):
            storage.delete_prefix(f"{prefix}{entry}")
    except StorageError as exc:
        log.warning("job %s: objects not deleted, retried next sweep: %s", job_id, exc)
        return False
    return True
