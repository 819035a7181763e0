"""The embedded stack's event hub: one SQLite poller per API process hears events that
another process (the worker) commits."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from api import hub as hub_module
from api.hub import EventHub
from core.config import Settings
from core.db import session_scope
from core.jobs import submission
from core.jobs.schemas import parse_job
from core.migrate import upgrade
from core.tenants import service as tenants

ROOT = Path(__file__).resolve().parents[3]
WORKER_SIDE = """
import sys
from core.config import Settings
from core.jobs import events, transitions
from core.jobs.states import JobStatus
with events.session_scope(Settings(database_url=sys.argv[1])) as session:
    transitions.transition(session=session, job_id=sys.argv[2], target=JobStatus.running)
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    url = f"sqlite:///{tmp_path}/hub.db"
    upgrade(url)
    return Settings(database_url=url, event_poll_interval_s=0.05)


def queued_job(settings: Settings) -> str:
    with session_scope(settings.database_url) as session:
        tenant = tenants.get_or_create_tenant(session=session, name="acme")
        body = {"kind": "train", "engine": "gan", "dataset": "digits", "model_name": "m"}
        return submission.create_job(
            session=session, settings=settings, tenant=tenant, job_in=parse_job(body)
        ).id


def first_event_heard(settings: Settings, job_id: str) -> object:
    """Subscribe to the job, start it from another process, and return what the hub hands
    the subscriber first."""
    hub = EventHub(settings)

    async def watch() -> object:
        hub.ensure_started()
        sub = hub.subscribe(job_id)
        subprocess.run(  # noqa: S603 - our own module, in a process of its own
            [sys.executable, "-c", WORKER_SIDE, settings.database_url, job_id],
            cwd=ROOT,
            check=True,
        )
        return await asyncio.wait_for(sub.get(), timeout=20)

    try:
        return asyncio.run(watch())
    finally:
        hub.close()


def test_event_committed_by_another_process_reaches_a_subscriber(settings: Settings) -> None:
    job_id = queued_job(settings)
    event = first_event_heard(settings, job_id)
    assert getattr(event, "job_id", None) == job_id
    assert getattr(event, "type", None) == "start"
    assert getattr(event, "payload", {})["status"] == "running"


def test_an_event_whose_fetch_failed_is_delivered_on_the_next_tick(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = queued_job(settings)
    by_ids, failures = hub_module.events.by_ids, []

    def locked_once(**kwargs: object) -> object:
        if not failures:
            failures.append(1)
            raise OperationalError("SELECT", {}, Exception("database is locked"))
        return by_ids(**kwargs)

    monkeypatch.setattr(hub_module.events, "by_ids", locked_once)
    event = first_event_heard(settings, job_id)
    assert failures == [1]
    assert getattr(event, "type", None) == "start"
