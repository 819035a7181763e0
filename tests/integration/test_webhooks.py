"""Webhooks end to end: a real receiver on loopback, the real worker sending from the cpu
queue, every delivery verified with the Standard Webhooks reference library."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from standardwebhooks import Webhook

from api.main import create_app
from core.db import session_scope
from core.jobs import submission, transitions
from core.jobs.orm import Job
from core.jobs.schemas import parse_job
from core.jobs.states import JobStatus
from core.tenants.orm import Tenant
from tests.integration.conftest import TINY_DDPM
from tests.integration.receiver import HANG, Receiver
from worker import webhooks as sender
from worker.reconcile import reconcile

pytestmark = pytest.mark.integration

TRAIN = {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "hooked"}


@pytest.fixture(scope="module")
def receiver():
    r = Receiver()
    yield r
    r.close()


def _queued_job(settings, tenant, webhook: str, events: list[str] | None = None) -> str:
    """A queued job whose message is never published: cancel it to get its ``completed``
    event without training anything."""
    body = {**TRAIN, "config": TINY_DDPM, "webhook": webhook}
    if events:
        body["webhook_events_filter"] = events
    with session_scope(settings.database_url) as session:
        owner = session.scalar(select(Tenant).where(Tenant.name == tenant.name))
        return submission.create_job(
            session=session, settings=settings, tenant=owner, job_in=parse_job(body)
        ).id


def _settled(tenant, job_id: str, timeout_s: float = 120) -> list[dict]:
    """The job's delivery log once nothing in it is pending."""
    deadline = time.monotonic() + timeout_s
    while True:
        items = tenant.get(f"/v1/jobs/{job_id}/webhook-deliveries").json()["items"]
        if items and all(d["status"] != "pending" for d in items):
            return items
        assert time.monotonic() < deadline, items
        time.sleep(0.2)


def _secret(tenant) -> str:
    return tenant.get("/v1/webhooks/secret").json()["key"]


def test_default_filter_delivers_start_and_completed_signed(worker, tenant, receiver):
    url = receiver.url("/default")
    job = tenant.submit({**TRAIN, "config": TINY_DDPM, "webhook": url})
    done = tenant.wait(job["id"])
    _settled(tenant, job["id"])
    got = receiver.at("/default")
    bodies = [Webhook(_secret(tenant)).verify(r.body, r.headers) for r in got]
    assert [b["type"] for b in bodies] == ["start", "completed"]
    assert bodies[0]["status"] == "running"
    completed = bodies[1]
    assert completed["status"] == "succeeded"
    assert completed["result"] == done["result"]
    assert completed["completed_at"] == done["completed_at"]
    assert completed["event_id"] == got[1].headers["webhook-id"]


def test_selected_events_arrive_in_order(worker, tenant, receiver):
    url = receiver.url("/all")
    every = ["start", "progress", "output", "completed"]
    job = tenant.submit(
        {**TRAIN, "config": TINY_DDPM, "webhook": url, "webhook_events_filter": every}
    )
    tenant.wait(job["id"])
    _settled(tenant, job["id"])
    bodies = [Webhook(_secret(tenant)).verify(r.body, r.headers) for r in receiver.at("/all")]
    types = [b["type"] for b in bodies]
    assert types[0] == "start" and types[-1] == "completed"
    assert {"progress", "output"} <= set(types[1:-1])
    ids = [int(b["event_id"].removeprefix("evt_")) for b in bodies]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_filter_selects_only_the_named_events(settings, worker, tenant, receiver):
    job_id = _queued_job(settings, tenant, receiver.url("/only-completed"), ["completed"])
    tenant.post(f"/v1/jobs/{job_id}/cancel")
    (delivery,) = _settled(tenant, job_id)
    assert delivery["event"] == "completed"
    (got,) = receiver.at("/only-completed")
    assert Webhook(_secret(tenant)).verify(got.body, got.headers)["status"] == "canceled"


def test_completed_is_retried_after_500s_with_the_same_webhook_id(
    settings, worker, tenant, receiver
):
    job_id = _queued_job(settings, tenant, receiver.url("/flaky", 500, 500, 200))
    tenant.post(f"/v1/jobs/{job_id}/cancel")
    got = receiver.wait_for("/flaky", 3)
    assert len({r.headers["webhook-id"] for r in got}) == 1
    for r in got:
        Webhook(_secret(tenant)).verify(r.body, r.headers)
    (delivery,) = _settled(tenant, job_id)
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 500, 200]


def test_410_gone_stops_every_delivery_of_the_job(worker, tenant, receiver):
    url = receiver.url("/gone", 410)
    every = ["start", "progress", "output", "completed"]
    job = tenant.submit(
        {**TRAIN, "config": TINY_DDPM, "webhook": url, "webhook_events_filter": every}
    )
    tenant.wait(job["id"])
    log = _settled(tenant, job["id"])
    assert len(receiver.at("/gone")) == 1
    assert log[0]["event"] == "start" and log[0]["status"] == "gone"
    assert {d["status"] for d in log[1:]} == {"canceled"}
    assert log[-1]["event"] == "completed"


def test_receiver_that_hangs_is_timed_out_and_retried(settings, worker, tenant, receiver):
    job_id = _queued_job(settings, tenant, receiver.url("/hang", HANG))
    tenant.post(f"/v1/jobs/{job_id}/cancel")
    deadline = time.monotonic() + 60
    while True:
        (delivery,) = tenant.get(f"/v1/jobs/{job_id}/webhook-deliveries").json()["items"]
        if delivery["attempts"]:
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert "timed out after 2 s" in delivery["attempts"][0]["error"]
    assert delivery["attempts"][0]["status_code"] is None
    receiver.script("/hang", 410)  # let the retries end
    assert _settled(tenant, job_id)[0]["status"] == "gone"


def test_after_rotation_deliveries_verify_with_old_and_new_secret(
    settings, worker, tenant, receiver
):
    old = _secret(tenant)
    rotated = tenant.post("/v1/webhooks/secret/rotate").json()
    new = rotated["key"]
    assert new != old and new.startswith("whsec_") and rotated["previous_key_valid_until"]
    assert _secret(tenant) == new
    job_id = _queued_job(settings, tenant, receiver.url("/rotated"))
    tenant.post(f"/v1/jobs/{job_id}/cancel")
    (got,) = receiver.wait_for("/rotated", 1)
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(got.body, got.headers)["id"] == job_id
    assert Webhook(new).verify(got.body, got.headers)["id"] == job_id


def test_final_4xx_is_logged_and_a_manual_retry_sends_it_again(settings, worker, tenant, receiver):
    job_id = _queued_job(settings, tenant, receiver.url("/rejects", 400))
    tenant.post(f"/v1/jobs/{job_id}/cancel")
    (failed,) = _settled(tenant, job_id)
    assert failed["status"] == "failed"
    assert failed["response_status"] == 400 and "final" in failed["last_error"]
    receiver.script("/rejects", 200)
    response = tenant.post(f"/v1/jobs/{job_id}/webhook-deliveries/{failed['id']}/retry")
    assert response.status_code == 202
    (delivered,) = _settled(tenant, job_id)
    assert delivered["status"] == "delivered"
    first, second = receiver.at("/rejects")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/hook", "http://localhost:9/h"],
)
def test_webhook_to_a_private_address_is_refused_at_submit(settings, tenant, url):
    strict = settings.model_copy(update={"webhook_allowed_cidrs": []})
    with TestClient(create_app(strict)) as client, session_scope(settings.database_url) as s:
        before = s.scalar(select(func.count()).select_from(Job))
        response = client.post("/v1/jobs", json={**TRAIN, "webhook": url}, headers=tenant.headers)
        assert response.status_code == 422
        assert response.json()["invalid_params"][0]["name"] == "webhook"
        assert s.scalar(select(func.count()).select_from(Job)) == before


def test_plain_http_webhook_is_refused_unless_allowed(settings, tenant):
    strict = settings.model_copy(update={"webhook_allow_http": False})
    with TestClient(create_app(strict)) as client:
        response = client.post(
            "/v1/jobs", json={**TRAIN, "webhook": "http://127.0.0.1/h"}, headers=tenant.headers
        )
    assert response.status_code == 422
    assert "https" in response.json()["invalid_params"][0]["reason"]


def test_host_resolving_to_a_private_address_at_delivery_is_refused(settings, tenant, receiver):
    job_id = _queued_job(settings, tenant, receiver.url("/rebound"))
    with session_scope(settings.database_url) as session:  # no send published: ours below
        transitions.transition(session=session, job_id=job_id, target=JobStatus.canceled)
    # The name now answers a private address (DNS rebinding since submit).
    sender.deliver(job_id, settings=settings, resolver=lambda host, port: ["10.0.0.7"])
    (delivery,) = tenant.get(f"/v1/jobs/{job_id}/webhook-deliveries").json()["items"]
    assert delivery["status"] == "failed"
    assert "10.0.0.7" in delivery["last_error"] and "private" in delivery["last_error"]
    assert receiver.at("/rebound") == []


def test_event_committed_by_a_process_that_died_before_sending_is_delivered(
    settings, worker, tenant, receiver
):
    job_id = _queued_job(settings, tenant, receiver.url("/orphan"))
    with session_scope(settings.database_url) as session:
        # The state change and its delivery commit; the process dies before publishing.
        transitions.transition(session=session, job_id=job_id, target=JobStatus.canceled)
    deadline = time.monotonic() + 60
    while not receiver.at("/orphan"):  # the reconciler's sweep waits out a grace period
        reconcile(settings)
        assert time.monotonic() < deadline
        time.sleep(0.5)
    (got,) = receiver.wait_for("/orphan", 1)
    assert Webhook(_secret(tenant)).verify(got.body, got.headers)["status"] == "canceled"
