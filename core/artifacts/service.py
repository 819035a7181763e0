"""Artifact rows: what a job wrote to storage, listed with downloadable URLs."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.artifacts.orm import Artifact
from core.errors import ArtifactNotFound
from core.storage.base import StoredObject


def prefix_of(job_id: str) -> str:
    """Where a job's files are stored (``jobs/{job_id}``); the artifacts are below it."""
    return f"jobs/{job_id}"


def key_of(job_id: str, name: str) -> str:
    """The storage key of job ``job_id``'s file ``name`` (``grid.png``, ``model/x``)."""
    return f"{prefix_of(job_id)}/{name}"


def record(*, session: Session, job_id: str, objects: Iterable[tuple[str, StoredObject]]) -> None:
    """Record ``(name, stored object)`` pairs; the objects must already be in storage."""
    session.add_all(
        Artifact(
            job_id=job_id, name=name, key=obj.key, size=obj.size, content_type=obj.content_type
        )
        for name, obj in objects
    )
    session.flush()


def list_for_job(
    *, session: Session, job_id: str, after: str | None = None, limit: int = 1000
) -> list[Artifact]:
    query = select(Artifact).where(Artifact.job_id == job_id)
    if after is not None:
        query = query.where(Artifact.name > after)
    return list(session.scalars(query.order_by(Artifact.name).limit(limit)))


def get(*, session: Session, job_id: str, name: str) -> Artifact:
    row = session.scalar(select(Artifact).where(Artifact.job_id == job_id, Artifact.name == name))
    if row is None:
        raise ArtifactNotFound(f"Job {job_id} has no artifact named {name!r}.")
    return row
