"""The reconciler repairs from Postgres what a lost message or a dead worker left."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from core.db import session_scope, utcnow
from core.jobs import submission, transitions
from core.jobs.orm import Job, Outbox
from core.jobs.schemas import parse_job
from core.jobs.states import JobStatus
from core.tenants.orm import Tenant
from tests.integration.conftest import TINY_DDPM
from worker.reconcile import reconcile

pytestmark = pytest.mark.integration

TRAIN = {
    "kind": "train",
    "engine": "ddpm",
    "dataset": "shapes",
    "model_name": "rec",
    "config": TINY_DDPM,
}


def _queued_without_message(settings, tenant_name: str) -> str:
    with session_scope(settings.database_url) as session:
        owner = session.scalar(select(Tenant).where(Tenant.name == tenant_name))
        job = submission.create_job(
            session=session,
            settings=settings,
            tenant=owner,
            job_in=parse_job(TRAIN),
        )
        job_id = job.id
        session.flush()
        session.execute(
            update(Outbox)
            .where(Outbox.job_id == job_id)
            .values(created_at=utcnow() - timedelta(minutes=1))
        )
    return job_id


def test_unpublished_outbox_job_is_published_and_runs(settings, worker, tenant):
    job_id = _queued_without_message(settings, tenant.name)
    counts = reconcile(settings)
    assert counts["published"] >= 1
    assert tenant.wait(job_id)["status"] == "succeeded"
    with session_scope(settings.database_url) as session:
        assert session.scalar(select(Outbox.published_at).where(Outbox.job_id == job_id))


def test_running_job_with_a_dead_heartbeat_is_requeued_and_finishes(settings, worker, tenant):
    job_id = _queued_without_message(settings, tenant.name)
    stale = utcnow() - timedelta(seconds=settings.heartbeat_timeout_s + 5)
    with session_scope(settings.database_url) as session:
        # As if a worker had claimed it and then died without a trace.
        transitions.transition(
            session=session, job_id=job_id, target=JobStatus.running, attempts=1, heartbeat_at=stale
        )
    counts = reconcile(settings)
    assert counts["requeued"] >= 1
    done = tenant.wait(job_id)
    assert done["status"] == "succeeded"
    with session_scope(settings.database_url) as session:
        assert session.get(Job, job_id).attempts == 2


def test_job_that_lost_its_worker_too_often_fails_with_a_reason(settings, tenant):
    job_id = _queued_without_message(settings, tenant.name)
    stale = utcnow() - timedelta(seconds=settings.heartbeat_timeout_s + 5)
    with session_scope(settings.database_url) as session:
        transitions.transition(
            session=session,
            job_id=job_id,
            target=JobStatus.running,
            attempts=settings.max_attempts,
            heartbeat_at=stale,
        )
    reconcile(settings)
    job = tenant.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "failed"
    assert job["error"]["type"] == "WorkerLost"
