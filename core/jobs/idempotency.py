"""``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header): a retried POST
answers the job the first one created, and never creates a second.

A key's life: ``reserve()`` claims it (row with no job) → the submit transaction creates
the job and ``link()``s the claim to it → replays find the job. A request that fails
before its job exists ``release()``s the claim so a retry starts afresh.

Who commits: ``reserve()`` and ``release()`` commit on their own, on purpose: a claim must
be visible to a concurrent request with the same key before the job exists (it answers
409 meanwhile), and a release must outlive the failed submit's rolled-back transaction.
``link()`` and ``purge_expired()`` join the caller's transaction (``link`` is part of the
job's own insert, so a key is never linked to a job that was not written).
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.db import as_utc, utcnow
from core.errors import IdempotencyConflict, IdempotencyMismatch
from core.jobs.orm import IdempotencyKey
from core.jobs.schemas import AnyJobIn
from core.tenants.orm import Tenant

# A claim without its job this old belongs to a request that died (e.g. with the database)
# and could not release it; a retry takes it over. A slower request still in flight then
# loses the race to link the key (``link``), so there is never a second job.
ABANDONED_CLAIM = timedelta(seconds=10)


def fingerprint(job_in: AnyJobIn) -> str:
    canonical = json.dumps(job_in.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def reserve(
    *, session: Session, tenant: Tenant, key: str, fingerprint: str, ttl_s: int
) -> str | None:
    """Claim ``key`` for a new request; returns the job id when it is a replay.

    Commits the claim itself, so a concurrent request with the same key sees it at once
    and answers 409 while this one is in flight.
    """
    for _ in range(3):
        now = utcnow()
        try:
            session.add(
                IdempotencyKey(
                    tenant_id=tenant.id,
                    key=key,
                    fingerprint=fingerprint,
                    expires_at=now + timedelta(seconds=ttl_s),
                )
            )
            session.commit()
            return None
        except IntegrityError:
            session.rollback()
        row = session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.tenant_id == tenant.id, IdempotencyKey.key == key
            )
        )
        if row is None:
            continue
        if as_utc(row.expires_at) <= now:
            session.delete(row)
            session.commit()
            continue
        if row.fingerprint != fingerprint:
            raise IdempotencyMismatch(
                "This Idempotency-Key was used with a different request body; "
                "use a new key for a new request.",
                field="Idempotency-Key",
            )
        if row.job_id is None and as_utc(row.created_at) < now - ABANDONED_CLAIM:
            # The request that claimed the key died between its claim and its job (e.g.
            # the database went away mid-request): the claim is abandoned, take it over.
            session.delete(row)
            session.commit()
            continue
        if row.job_id is None:
            raise IdempotencyConflict(
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                field="Idempotency-Key",
            )
        return row.job_id
    raise IdempotencyConflict("Idempotency-Key is contended; retry shortly.")


def link(*, session: Session, tenant: Tenant, key: str, job_id: str) -> None:
    """Point our claim of ``key`` at ``job_id``, in the job's transaction."""
    linked = session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.tenant_id == tenant.id,
            IdempotencyKey.key == key,
            IdempotencyKey.job_id.is_(None),
        )
        .values(job_id=job_id)
    )
    if linked.rowcount != 1:  # type: ignore[attr-defined]
        # Our claim was taken over as abandoned and the key linked to another job:
        # this request yields (its transaction, job included, is rolled back).
        raise IdempotencyConflict(
            "Another request with this Idempotency-Key created the job; retry to get it.",
            field="Idempotency-Key",
        )


def release(*, session: Session, tenant: Tenant, key: str) -> None:
    """Drop our unlinked claim of ``key`` (the submit failed); commits."""
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.tenant_id == tenant.id,
            IdempotencyKey.key == key,
            IdempotencyKey.job_id.is_(None),
        )
    )
    session.commit()


def purge_expired(*, session: Session) -> int:
    result = session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < utcnow()))
    return int(result.rowcount)  # type: ignore[attr-defined]
