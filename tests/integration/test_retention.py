"""Retention: expired jobs lose their rows and artifacts; a registered model keeps its files."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from core import retention
from core.artifacts import service as artifacts
from core.artifacts.orm import Artifact
from core.db import new_id, session_scope, utcnow
from core.jobs.orm import Job
from core.jobs.states import JobStatus
from core.model_versions import service as model_versions
from core.storage import from_settings as storage_from_settings
from core.tenants.orm import Tenant
from tests.integration.conftest import TenantClient

pytestmark = pytest.mark.integration


def _ended_job(settings, tenant: TenantClient, *, days_ago: float, files: list[str]) -> str:
    """A succeeded job that ended ``days_ago`` with ``files`` in storage and as artifacts."""
    storage = storage_from_settings(settings)
    ended = utcnow() - timedelta(days=days_ago)
    with session_scope(settings.database_url) as session:
        owner = session.scalar(select(Tenant).where(Tenant.name == tenant.name))
        job = Job(
            id=new_id(), tenant_id=owner.id, kind="train", status=JobStatus.succeeded,
            request={}, attempts=1, preemptions=0, created_at=ended, started_at=ended,
            completed_at=ended,
        )  # fmt: skip
        session.add(job)
        session.flush()
        objects = [(name, storage.put_bytes(f"jobs/{job.id}/{name}", b"x")) for name in files]
        artifacts.record(session=session, job_id=job.id, objects=objects)
        return job.id


def _sweep(settings):
    return retention.sweep(
        settings=settings.model_copy(update={"retention_days": 30}),
        storage=storage_from_settings(settings),
    )


def test_expired_job_loses_its_row_and_its_objects(settings, tenant):
    job_id = _ended_job(settings, tenant, days_ago=31, files=["grid.png", "images/000000.png"])
    _sweep(settings)
    with session_scope(settings.database_url) as session:
        assert session.get(Job, job_id) is None
    assert storage_from_settings(settings).list(f"jobs/{job_id}/") == []


def test_job_within_retention_is_kept(settings, tenant):
    job_id = _ended_job(settings, tenant, days_ago=29, files=["grid.png"])
    _sweep(settings)
    assert tenant.get(f"/v1/jobs/{job_id}").status_code == 200
    assert len(storage_from_settings(settings).list(f"jobs/{job_id}/")) == 1


def test_expired_train_job_keeps_its_registered_models_files(settings, tenant):
    files = ["model/model.safetensors", "model/config.json", "grid.png", "checkpoint/step"]
    job_id = _ended_job(settings, tenant, days_ago=40, files=files)
    with session_scope(settings.database_url) as session:
        owner = session.scalar(select(Tenant).where(Tenant.name == tenant.name))
        model_versions.register(
            session=session, tenant_id=owner.id, name="kept", engine="ddpm",
            dataset="shapes:train", config={}, spec={}, metrics={},
            checkpoint_uri=f"jobs/{job_id}/model/", train_job_id=job_id,
        )  # fmt: skip
    assert _sweep(settings)["trimmed"] >= 1
    keys = {o.key for o in storage_from_settings(settings).list(f"jobs/{job_id}/")}
    assert keys == {f"jobs/{job_id}/model/model.safetensors", f"jobs/{job_id}/model/config.json"}
    with session_scope(settings.database_url) as session:
        names = session.scalars(select(Artifact.name).where(Artifact.job_id == job_id)).all()
    assert sorted(names) == ["model/config.json", "model/model.safetensors"]
    assert tenant.get("/v1/models/kept/versions").status_code == 200
