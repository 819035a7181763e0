"""The submit hot path's shortcuts keep their promises: cached keys expire, revoked keys
stop working, and the dispatcher's batched publishes and marks reach the broker and the outbox."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from api.deps import TenantCache
from core import queue
from core.config import Settings
from core.db import session_scope
from core.errors import Unauthorized
from core.jobs import outbox
from core.jobs.orm import Job, JobEvent, Outbox
from core.jobs.outbox import Dispatcher
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


def _published(db: str) -> dict[str, object]:
    with session_scope(db) as s:
        return dict(s.execute(select(Outbox.job_id, Outbox.published_at)).all())


def test_dispatcher_publishes_in_the_background_then_marks_and_sends_the_rest_on_close(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for job_id in ("a", "b", "c"):
        _job_with_outbox(db, job_id)
    sent: list[list[tuple[str, str]]] = []
    monkeypatch.setattr(queue, "publish_jobs", lambda settings, jobs: sent.append(list(jobs)))
    dispatcher = Dispatcher(Settings(database_url=db), mark_interval_s=0.05)
    dispatcher.dispatch("a", "gpu")
    deadline = time.monotonic() + 5
    while _published(db)["a"] is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sent == [[("a", "gpu")]]  # sent by the thread, then marked
    assert _published(db)["a"] is not None
    dispatcher.dispatch("b", "cpu")
    dispatcher.close()  # what is left is sent and marked before close returns
    assert [job for batch in sent for job in batch] == [("a", "gpu"), ("b", "cpu")]
    rows = _published(db)
    assert rows["b"] is not None
    assert rows["c"] is None  # never dispatched: left for the reconciler


def test_dispatcher_leaves_a_batch_the_broker_refused_unmarked_and_goes_on(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for job_id in ("a", "b"):
        _job_with_outbox(db, job_id)
    attempts: list[list[tuple[str, str]]] = []

    def publish_jobs(settings: Settings, jobs: list[tuple[str, str]]) -> None:
        attempts.append(list(jobs))
        if ("a", "gpu") in jobs:
            raise ConnectionError("broker down")

    monkeypatch.setattr(queue, "publish_jobs", publish_jobs)
    sent, failed = (outbox.MESSAGES.labels(outcome=o)._value.get() for o in ("sent", "failed"))  # noqa: SLF001
    dispatcher = Dispatcher(Settings(database_url=db), mark_interval_s=60)
    dispatcher.dispatch("a", "gpu")
    deadline = time.monotonic() + 5
    while not attempts and time.monotonic() < deadline:
        time.sleep(0.02)
    dispatcher.dispatch("b", "gpu")
    dispatcher.close()
    assert attempts == [[("a", "gpu")], [("b", "gpu")]]  # "a" is not retried here
    assert outbox.MESSAGES.labels(outcome="failed")._value.get() == failed + 1  # noqa: SLF001
    assert outbox.MESSAGES.labels(outcome="sent")._value.get() == sent + 1  # noqa: SLF001
    rows = _published(db)
    assert rows["a"] is None  # the reconciler publishes it once it is 5 s old
    assert rows["b"] is not None
