"""Abuse limits: per-tenant quotas and the per-key rate limit answer 429 problem+json with
Retry-After and write nothing; no single request can ask for unbounded work; download
URLs expire; keys are compared in constant time and never logged."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.main import create_app
from core.artifacts import service as artifacts
from core.config import Settings
from core.db import new_id, session_scope, utcnow
from core.jobs.orm import Job
from core.jobs.states import JobStatus
from core.storage import from_settings as storage_from_settings
from core.tenants.orm import Tenant
from tests.integration.conftest import TINY_DDPM, TenantClient, _tenant_factory
from tests.servers import wait_for

pytestmark = pytest.mark.integration

TRAIN = {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "q",
         "config": TINY_DDPM}  # fmt: skip


@pytest.fixture()
def limited(settings: Settings) -> Iterator[Callable[..., TenantClient]]:
    """A tenant of an API started with the given settings (nothing consumes its queue)."""
    clients: list[TestClient] = []

    def make(**overrides) -> TenantClient:
        limits = Settings(**{**settings.model_dump(), "queue_prefix": "nobody-", **overrides})
        client = TestClient(create_app(limits))
        clients.append(client)
        return _tenant_factory(limits, client)()

    yield make
    for client in clients:
        client.close()


def _jobs_of(settings: Settings, tenant: TenantClient) -> int:
    with session_scope(settings.database_url) as session:
        return session.scalar(
            select(func.count(Job.id)).join(Tenant).where(Tenant.name == tenant.name)
        )


def _seed_run(settings: Settings, tenant: TenantClient, started_h: float, ended_h: float) -> str:
    """A succeeded job of the tenant that ran from ``started_h`` to ``ended_h`` hours ago
    (a row as the worker leaves it; written directly, past the quotas under test)."""
    now = utcnow()
    with session_scope(settings.database_url) as session:
        owner = session.scalar(select(Tenant).where(Tenant.name == tenant.name))
        job = Job(
            id=new_id(), tenant_id=owner.id, kind="train", status=JobStatus.succeeded,
            request=TRAIN, attempts=1, preemptions=0, created_at=now - timedelta(hours=3),
            started_at=now - timedelta(hours=started_h),
            completed_at=now - timedelta(hours=ended_h),
        )  # fmt: skip
        session.add(job)
        return job.id


def _refused(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return int(response.headers["retry-after"])


def test_queued_jobs_quota_answers_429_and_writes_nothing(settings, limited):
    tenant = limited(max_queued_jobs=2)
    tenant.submit(TRAIN)
    tenant.submit(TRAIN)
    assert _refused(tenant.post("/v1/jobs", json=TRAIN)) > 0
    assert _jobs_of(settings, tenant) == 2


def test_gpu_time_quota_retries_once_the_runs_leave_the_24h_window(settings, limited):
    tenant = limited(gpu_seconds_per_day=1800)
    _seed_run(settings, tenant, started_h=2, ended_h=1)  # 3600 s, from 2 h to 1 h ago
    retry_after = _refused(tenant.post("/v1/jobs", json=TRAIN))
    # Under 1800 s once the window starts past the run's middle: 22.5 h from now.
    assert abs(retry_after - 22.5 * 3600) < 60


def test_storage_quota_answers_429(settings, limited):
    tenant = limited(max_storage_bytes=100)
    job_id = _seed_run(settings, tenant, started_h=1, ended_h=0.5)
    obj = storage_from_settings(settings).put_bytes(f"jobs/{job_id}/big.bin", b"x" * 200)
    with session_scope(settings.database_url) as session:
        artifacts.record(session=session, job_id=job_id, objects=[("big.bin", obj)])
    assert _refused(tenant.post("/v1/jobs", json=TRAIN)) >= 60


def test_rate_limit_is_per_key(limited):
    tenant = limited(rate_limit_per_s=0.5, rate_limit_burst=3)
    for _ in range(3):
        assert tenant.get("/v1/jobs").status_code == 200
    assert _refused(tenant.get("/v1/jobs")) >= 1
    other = _tenant_factory(tenant.client.app.state.settings, tenant.client)()
    assert other.get("/v1/jobs").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**TRAIN, "config": {"max_steps": 1_000_000, "batch_size": 1024, "image_size": 64}},
         "config"),
        ({"kind": "generate", "model": "m", "count": 1_000_000, "config": {"steps": 1000}}, None),
        ({**TRAIN, "config": {"warmup_steps": 10**9}}, "config.warmup_steps"),
        ({**TRAIN, "config": {"max_steps": True}}, "config.max_steps"),
    ],
)  # fmt: skip
def test_requests_for_unbounded_work_are_refused(tenant: TenantClient, body, field):
    response = tenant.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    if field is not None:
        assert response.json()["invalid_params"][0]["name"] == field


def test_download_urls_expire(settings, limited):
    tenant = limited(artifact_url_ttl_s=2)
    job_id = _seed_run(settings, tenant, started_h=1, ended_h=0.5)
    obj = storage_from_settings(settings).put_bytes(f"jobs/{job_id}/grid.png", b"png")
    with session_scope(settings.database_url) as session:
        artifacts.record(session=session, job_id=job_id, objects=[("grid.png", obj)])
    url = tenant.get(f"/v1/jobs/{job_id}/artifacts").json()["items"][0]["url"]
    assert httpx.get(url).status_code == 200
    wait_for(lambda: httpx.get(url).status_code == 403, 15, "the URL expiring", interval_s=0.5)


def test_a_key_differing_in_its_last_character_is_refused(tenant: TenantClient):
    last = tenant.key[-1]
    wrong = tenant.key[:-1] + ("A" if last != "A" else "B")
    response = tenant.client.get("/v1/jobs", headers={"Authorization": f"Bearer {wrong}"})
    assert response.status_code == 401


def test_api_keys_never_reach_the_logs(tenant: TenantClient, caplog):
    caplog.set_level(logging.DEBUG)
    tenant.get("/v1/jobs")
    tenant.client.get("/v1/jobs", headers={"Authorization": f"Bearer {tenant.key}x"})
    tenant.post("/v1/jobs", json={"kind": "nope"})
    assert caplog.records
    assert tenant.key not in caplog.text
