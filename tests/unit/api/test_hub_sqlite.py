"""The embedded stack's event hub: one SQLite poller per API process hears events that
another process (the worker) commits."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

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


def test_event_committed_by_another_process_reaches_a_subscriber(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/hub.db"
    upgrade(url)
    settings = Settings(database_url=url, event_poll_interval_s=0.05)
    with session_scope(url) as session:
        tenant = tenants.get_or_create_tenant(session=session, name="acme")
        body = {"kind": "train", "engine": "gan", "dataset": "digits", "model_name": "m"}
        job_id = submission.create_job(
            session=session, settings=settings, tenant=tenant, job_in=parse_job(body)
        ).id
    hub = EventHub(settings)

    async def watch() -> object:
        hub.ensure_started()
        sub = hub.subscribe(job_id)
        subprocess.run(  # noqa: S603 - our own module, in a process of its own
            [sys.executable, "-c", WORKER_SIDE, url, job_id], cwd=ROOT, check=True
        )
        return await asyncio.wait_for(sub.get(), timeout=20)

    try:
        event = asyncio.run(watch())
    finally:
        hub.close()
    assert getattr(event, "job_id", None) == job_id
    assert getattr(event, "type", None) == "start"
    assert getattr(event, "payload", {})["status"] == "running"
