"""Cancel, idempotency, tenant isolation, redelivery and pagination over REST with a
real worker."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, text

from core import queue
from core.db import session_factory, session_scope, utcnow
from core.jobs import idempotency, submission, transitions
from core.jobs.orm import IdempotencyKey, Job, JobEvent
from core.jobs.schemas import parse_job
from core.jobs.states import JobKind, JobStatus
from core.model_versions.orm import ModelVersion
from core.tenants.orm import Tenant
from tests.integration.conftest import TINY_DDPM
from tests.servers import wait_for

pytestmark = pytest.mark.integration

TRAIN = {
    "kind": "train",
    "engine": "ddpm",
    "dataset": "shapes",
    "model_name": "m",
    "config": TINY_DDPM,
}
LONG_TRAIN = {**TRAIN, "model_name": "long", "config": {**TINY_DDPM, "max_steps": 100_000}}


def _insert_queued(settings, tenant_name: str, body: dict = TRAIN) -> str:
    """A queued job whose message was never published (as if the broker lost it)."""
    with session_scope(settings.database_url) as session:
        tenant = session.scalar(select(Tenant).where(Tenant.name == tenant_name))
        job = submission.create_job(
            session=session,
            settings=settings,
            tenant=tenant,
            job_in=parse_job(body),
        )
        return job.id


def _events(settings, job_id: str) -> list[str]:
    """The job's state changes (its progress and output events left out)."""
    with session_scope(settings.database_url) as session:
        return list(
            session.scalars(
                select(JobEvent.status)
                .where(JobEvent.job_id == job_id, JobEvent.type.not_in(("progress", "output")))
                .order_by(JobEvent.id)
            )
        )


def test_cancel_queued_job_and_its_late_message_does_nothing(settings, worker, tenant):
    job_id = _insert_queued(settings, tenant.name)
    response = tenant.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"
    queue.publish_job(settings, job_id, "gpu")
    worker.wait_for(f"job {job_id} not claimable")  # the worker has seen the message
    job = tenant.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "canceled"
    assert job["started_at"] is None
    assert _events(settings, job_id) == ["queued", "canceled"]


def test_cancel_running_job_stops_it_and_registers_nothing(settings, worker, tenant):
    job = tenant.submit(LONG_TRAIN)
    running = tenant.wait(job["id"], until={"running"})
    deadline = time.monotonic() + 60
    while (running.get("progress") or {}).get("step", 0) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.2)
        running = tenant.get(f"/v1/jobs/{job['id']}").json()
    assert tenant.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "canceled"
    step_at_cancel = tenant.get(f"/v1/jobs/{job['id']}").json()["progress"]["step"]
    worker.wait_for(f"job {job['id']} stopped: no longer running")  # the run has ended
    after = tenant.get(f"/v1/jobs/{job['id']}").json()
    assert after["status"] == "canceled"
    assert after["progress"]["step"] == step_at_cancel  # the worker stopped writing
    assert tenant.get("/v1/models").json() == []
    # The worker is free again: a next job runs to completion.
    nxt = tenant.submit({**TRAIN, "model_name": "after-cancel"})
    assert tenant.wait(nxt["id"])["status"] == "succeeded"


def test_second_cancel_of_a_canceled_job_answers_200_with_the_job(settings, tenant):
    job_id = _insert_queued(settings, tenant.name)
    first = tenant.post(f"/v1/jobs/{job_id}/cancel")
    second = tenant.post(f"/v1/jobs/{job_id}/cancel")
    assert first.status_code == second.status_code == 200
    assert second.json()["status"] == "canceled"
    assert second.json()["completed_at"] == first.json()["completed_at"]
    assert _events(settings, job_id) == ["queued", "canceled"]


@pytest.mark.parametrize("ended", [JobStatus.succeeded, JobStatus.failed])
def test_cancel_of_a_job_that_ended_is_409_saying_so(settings, tenant, ended):
    job_id = _insert_queued(settings, tenant.name)
    with session_scope(settings.database_url) as session:
        transitions.transition(session=session, job_id=job_id, target=JobStatus.running)
        transitions.transition(session=session, job_id=job_id, target=ended)
    response = tenant.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert f"already ended ({ended})" in response.json()["detail"]
    assert tenant.get(f"/v1/jobs/{job_id}").json()["status"] == ended


def test_redelivered_run_job_message_does_not_run_the_job_twice(settings, worker, tenant):
    job = tenant.submit(TRAIN)
    done = tenant.wait(job["id"])
    assert done["status"] == "succeeded"
    queue.publish_job(settings, job["id"], "gpu")  # the same message, delivered again
    queue.publish_job(settings, job["id"], "gpu")
    worker.wait_for(f"job {job['id']} not claimable", count=2)  # both were handled
    again = tenant.get(f"/v1/jobs/{job['id']}").json()
    assert again["completed_at"] == done["completed_at"]
    assert _events(settings, job["id"]) == ["queued", "running", "succeeded"]
    with session_scope(settings.database_url) as session:
        assert session.get(Job, job["id"]).attempts == 1
        assert (
            session.scalar(
                select(func.count())
                .select_from(ModelVersion)
                .where(ModelVersion.train_job_id == job["id"])
            )
            == 1
        )


def test_same_idempotency_key_and_body_returns_the_same_job(settings, worker, tenant):
    headers = {"Idempotency-Key": "k-1"}
    first = tenant.post("/v1/jobs", json=TRAIN, headers=headers)
    second = tenant.post("/v1/jobs", json=TRAIN, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(tenant.get("/v1/jobs").json()["items"]) == 1
    tenant.wait(first.json()["id"])


def test_same_idempotency_key_with_other_body_is_422(worker, tenant):
    headers = {"Idempotency-Key": "k-2"}
    assert tenant.post("/v1/jobs", json=TRAIN, headers=headers).status_code == 201
    other = tenant.post("/v1/jobs", json={**TRAIN, "model_name": "other"}, headers=headers)
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["invalid_params"][0]["name"] == "Idempotency-Key"
    assert len(tenant.get("/v1/jobs").json()["items"]) == 1


def _lock_waits(settings) -> int:
    # A transaction of its own per look: pg_stat_activity is a snapshot per transaction.
    with session_scope(settings.database_url) as session:
        return int(
            session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            )
        )


def test_same_key_in_flight_waits_for_the_first_request_and_answers_its_job(settings, tenant):
    """A request whose key another request is writing right now (its transaction still
    open) waits for that commit on the key's unique index, then answers that job."""
    with session_scope(settings.database_url) as session:
        owner = session.scalar(select(Tenant).where(Tenant.name == tenant.name))
        session.expunge(owner)
    in_flight = session_factory(settings.database_url)()
    try:
        first = submission.insert_job(
            session=in_flight,
            tenant=owner,
            kind=JobKind.train,
            request=parse_job(TRAIN).model_dump(mode="json"),
            claim=idempotency.Claim("k-3", idempotency.fingerprint(parse_job(TRAIN)), 60),
        )
        assert first is not None
        answers: list[httpx.Response] = []
        second = threading.Thread(
            target=lambda: answers.append(
                tenant.post("/v1/jobs", json=TRAIN, headers={"Idempotency-Key": "k-3"})
            )
        )
        second.start()
        wait_for(lambda: _lock_waits(settings) > 0, 30, "the second request waiting on the key")
        assert not answers  # held until the first commits
        in_flight.commit()
    finally:
        in_flight.close()
    second.join(timeout=30)
    assert answers[0].status_code == 201, answers[0].text
    assert answers[0].json()["id"] == first.id
    assert answers[0].headers["Idempotent-Replayed"] == "true"
    assert [j["id"] for j in tenant.get("/v1/jobs").json()["items"]] == [first.id]


def test_a_claim_left_without_its_job_is_taken_over(settings, tenant):
    """A key row with no job (left by a version that claimed keys before writing the
    job, whose request died) does not block the key: the next request takes it over."""
    with session_scope(settings.database_url) as session:
        owner = session.scalar(select(Tenant).where(Tenant.name == tenant.name))
        session.add(
            IdempotencyKey(
                tenant_id=owner.id,
                key="k-5",
                fingerprint=idempotency.fingerprint(parse_job(TRAIN)),
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
    response = tenant.post("/v1/jobs", json=TRAIN, headers={"Idempotency-Key": "k-5"})
    assert response.status_code == 201, response.text
    assert "Idempotent-Replayed" not in response.headers
    with session_scope(settings.database_url) as session:
        row = session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == "k-5"))
        assert row is not None and row.job_id == response.json()["id"]


def test_an_expired_key_is_free_again(settings, tenant):
    first = tenant.submit(TRAIN, headers={"Idempotency-Key": "k-6"})
    with session_scope(settings.database_url) as session:
        row = session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == "k-6"))
        row.expires_at = utcnow() - timedelta(seconds=1)
    other = {**TRAIN, "model_name": "after-expiry"}
    response = tenant.post("/v1/jobs", json=other, headers={"Idempotency-Key": "k-6"})
    assert response.status_code == 201, response.text
    assert "Idempotent-Replayed" not in response.headers
    assert response.json()["id"] != first["id"]


def test_idempotency_key_is_per_tenant(worker, make_tenant):
    a, b = make_tenant(), make_tenant()
    ja = a.post("/v1/jobs", json=TRAIN, headers={"Idempotency-Key": "shared"}).json()
    jb = b.post("/v1/jobs", json=TRAIN, headers={"Idempotency-Key": "shared"}).json()
    assert ja["id"] != jb["id"]
    a.wait(ja["id"])
    b.wait(jb["id"])


def test_rejected_request_releases_its_idempotency_key(settings, tenant):
    body = {"kind": "generate", "model": "nope", "count": 1}
    assert tenant.post("/v1/jobs", json=body, headers={"Idempotency-Key": "k-4"}).status_code == 404
    with session_scope(settings.database_url) as session:
        assert session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == "k-4")) is None


def test_another_tenants_job_answers_404(worker, make_tenant):
    owner, other = make_tenant(), make_tenant()
    job = owner.submit(TRAIN)
    owner.wait(job["id"])
    for method, path in [
        ("GET", f"/v1/jobs/{job['id']}"),
        ("POST", f"/v1/jobs/{job['id']}/cancel"),
        ("GET", f"/v1/jobs/{job['id']}/artifacts"),
        ("GET", "/v1/models/m/versions"),
    ]:
        response = other.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.headers["content-type"] == "application/problem+json"
    assert other.get("/v1/jobs").json()["items"] == []
    assert other.get("/v1/models").json() == []
    gen = other.post("/v1/jobs", json={"kind": "generate", "model": "m", "count": 1})
    assert gen.status_code == 404


def test_requests_without_a_valid_key_are_401(app_client):
    assert app_client.get("/v1/jobs").status_code == 401
    response = app_client.get("/v1/jobs", headers={"Authorization": "Bearer sg_wrong"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


def test_list_is_newest_first_with_cursor_pagination_and_filters(settings, tenant):
    ids = [_insert_queued(settings, tenant.name) for _ in range(5)]
    page1 = tenant.get("/v1/jobs", params={"limit": 2}).json()
    page2 = tenant.get("/v1/jobs", params={"limit": 2, "cursor": page1["next_cursor"]}).json()
    page3 = tenant.get("/v1/jobs", params={"limit": 2, "cursor": page2["next_cursor"]}).json()
    seen = [j["id"] for j in page1["items"] + page2["items"] + page3["items"]]
    assert seen == list(reversed(ids))
    assert page3["next_cursor"] is None
    tenant.post(f"/v1/jobs/{ids[0]}/cancel")
    canceled = tenant.get("/v1/jobs", params={"status": "canceled"}).json()["items"]
    assert [j["id"] for j in canceled] == [ids[0]]
    assert tenant.get("/v1/jobs", params={"kind": "generate"}).json()["items"] == []
    bad = tenant.get("/v1/jobs", params={"status": "done"})
    assert bad.status_code == 422
    assert bad.json()["invalid_params"][0]["name"] == "status"
    for job_id in ids[1:]:
        tenant.post(f"/v1/jobs/{job_id}/cancel")


def test_readyz_checks_database_broker_and_storage(app_client):
    response = app_client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok", "storage": "ok"}
    assert app_client.get("/healthz").json() == {"status": "ok"}


def test_a_job_message_lands_in_exactly_one_queue(settings):
    import redis

    from core.config import Settings

    isolated = Settings(broker_url=settings.broker_url, queue_prefix=f"{settings.queue_prefix}x-")
    queue.publish_job(isolated, "some-job", "gpu")
    r = redis.Redis.from_url(settings.broker_url)
    gpu, cpu = f"{isolated.queue_prefix}gpu", f"{isolated.queue_prefix}cpu"
    try:
        assert (r.llen(gpu), r.llen(cpu)) == (1, 0)
    finally:
        r.delete(gpu, cpu)
