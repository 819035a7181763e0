"""``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header): a retried POST
answers the job the first one created, and never creates a second.

A key's row is written by the same statement (on SQLite: the same transaction) as the job
it created, already linked to it (core/jobs/submission.py ``insert_job``), so a key never
exists without its job and no request can die holding a claim. A concurrent request with
the same key waits on the unique index for the first one's commit (a few milliseconds),
then finds the key taken and answers the first job (``replay``).

Who commits: nothing here; ``replay`` deletes an expired key in the caller's transaction,
which ``submit()`` commits before it writes the key again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.db import as_utc, utcnow
from core.errors import IdempotencyMismatch
from core.jobs.orm import IdempotencyKey
from core.jobs.schemas import AnyJobIn
from core.tenants.orm import Tenant


@dataclass(frozen=True)
class Claim:
    """What a submit with a key writes beside its job."""

    key: str
    fingerprint: str
    ttl_s: int

    def expires_at(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.ttl_s)


def fingerprint_of(request: dict[str, Any]) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def fingerprint(job_in: AnyJobIn) -> str:
    return fingerprint_of(job_in.model_dump(mode="json"))


def replay(*, session: Session, tenant: Tenant, claim: Claim) -> str | None:
    """The job of an earlier request with ``claim.key``; None when the key is free (again).

    Raises IdempotencyMismatch when the key was used with another body. An expired key
    is deleted (in the caller's transaction) and counts as free.
    """
    row = session.scalar(
        select(IdempotencyKey).where(
            IdempotencyKey.tenant_id == tenant.id, IdempotencyKey.key == claim.key
        )
    )
    if row is None:
        return None
    if as_utc(row.expires_at) <= utcnow() or row.job_id is None:
        # Expired, or a claim without its job left by a version that claimed keys ahead
        # of their job (its request, if still alive, fails to link it and rolls back).
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row.id))
        return None
    if row.fingerprint != claim.fingerprint:
        raise IdempotencyMismatch(
            "This Idempotency-Key was used with a different request body; "
            "use a new key for a new request.",
            field="Idempotency-Key",
        )
    return row.job_id


def purge_expired_idempotency_keys(*, session: Session) -> int:
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < utcnow()))
    return int(result.rowcount)  # type: ignore[attr-defined]
