"""The submit hot path's shortcuts keep their promises: cached keys expire, revoked keys
stop working, and batched publish marks reach the outbox."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from api.deps import TenantCache
from core.db import session_scope
from core.errors import Unauthorized
from core.jobs.orm import Job, JobEvent, Outbox
from core.jobs.outbox import OutboxMarker
from core.migrate import upgrade
from core.tenants import service as tenants


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/t.db"
    upgrade(url)
    return url


def test_revoked_key_no_longer_authenticates(db: str) -> None:
    with session_scope(db) as s:
        key = tenants.create_key(session=s, tenant_name="acme")
    with session_scope(db) as s:
        assert tenants.authenticate(session=s, key=key).name == "acme"
        assert tenants.revoke_key(session=s, prefix=key[:10]) == 1
    with session_scope(db) as s, pytest.raises(Unauthorized):
        tenants.authenticate(session=s, key=key)


def test_revoke_refuses_a_prefix_too_short_to_identify_a_key(db: str) -> None:
    with session_scope(db) as s, pytest.raises(ValueError, match="at least"):
        tenants.revoke_key(session=s, prefix="sg_")


def test_tenant_cache_forgets_entries_after_ttl() -> None:
    cache = TenantCache(ttl_s=0.05)
    tenant = object()
    cache.put("h", tenant)  # type: ignore[arg-type]
    assert cache.get("h") is tenant
    time.sleep(0.06)
    assert cache.get("h") is None


def test_tenant_cache_with_zero_ttl_keeps_nothing() -> None:
    cache = TenantCache(ttl_s=0)
    cache.put("h", object())  # type: ignore[arg-type]
    assert cache.get("h") is None


def _job_with_outbox(db: str, job_id: str) -> None:
    with session_scope(db) as s:
        tenant = tenants.get_or_create_tenant(session=s, name="acme")
        s.add(Job(id=job_id, tenant_id=tenant.id, kind="train", status="queued", request={}))
        s.add(JobEvent(job_id=job_id, status="queued"))
        s.add(Outbox(job_id=job_id, task_name="t", queue="cpu"))


def test_outbox_marker_marks_rows_published_in_the_background_and_on_close(db: str) -> None:
    for job_id in ("a", "b", "c"):
        _job_with_outbox(db, job_id)
    marker = OutboxMarker(db, interval_s=0.05)
    marker.mark("a")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with session_scope(db) as s:
            published = s.scalar(select(Outbox.published_at).where(Outbox.job_id == "a"))
        if published is not None:
            break
        time.sleep(0.02)
    assert published is not None
    marker.mark("b")
    marker.close()  # the last batch is written before close returns
    with session_scope(db) as s:
        rows = dict(s.execute(select(Outbox.job_id, Outbox.published_at)).all())
    assert rows["b"] is not None
    assert rows["c"] is None  # never published: left for the reconciler
