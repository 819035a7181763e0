"""GET /v1/jobs/{id}/events (SSE) and ``Prefer: wait`` against a real uvicorn server, the
real worker and Postgres (events fanned out by the API's LISTEN/NOTIFY listener)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from api.main import create_app
from tests.integration.conftest import TINY_DDPM
from tests.integration.live_server import client, serve

pytestmark = pytest.mark.integration

TRAIN = {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "streamed"}
LONG_TRAIN = {**TRAIN, "config": {**TINY_DDPM, "max_steps": 100_000}}


@pytest.fixture(scope="module")
def api_url(settings) -> Iterator[str]:
    with serve(create_app(settings)) as url:
        yield url


def _sse(response: httpx.Response) -> Iterator[dict]:
    """Messages of an SSE response as {"id", "event", "data"} (keep-alives skipped)."""
    message: dict = {}
    for line in response.iter_lines():
        if not line:
            if "data" in message:
                message["data"] = json.loads(message["data"])
                yield message
            message = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            message[name] = value


def test_stream_follows_a_running_job_live_to_its_end(api_url, worker, tenant):
    job = tenant.submit(LONG_TRAIN)
    seen = []
    with (
        client(api_url, tenant.key) as http,
        http.stream("GET", f"/v1/jobs/{job['id']}/events") as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for message in _sse(r):
            seen.append(message)
            if message["event"] == "progress" and len(seen) == 2:
                # Only the stream's live events can tell us the job is training.
                assert tenant.post(f"/v1/jobs/{job['id']}/cancel").status_code == 200
    types = [m["event"] for m in seen]
    assert types[:2] == ["start", "progress"] and types[-1] == "completed"
    assert [m["data"]["type"] for m in seen] == types
    assert seen[-1]["data"]["status"] == "canceled"
    assert seen[0]["data"]["id"] == job["id"] and seen[0]["data"]["request"] == job["request"]
    ids = [int(m["id"].removeprefix("evt_")) for m in seen]
    assert ids == sorted(ids) and [m["data"]["event_id"] for m in seen] == [m["id"] for m in seen]


def test_stream_resumes_after_last_event_id(api_url, worker, tenant):
    job = tenant.submit({**TRAIN, "config": TINY_DDPM})
    tenant.wait(job["id"])
    with client(api_url, tenant.key) as http:
        with http.stream("GET", f"/v1/jobs/{job['id']}/events") as r:
            everything = list(_sse(r))
        headers = {"Last-Event-ID": everything[0]["id"]}
        with http.stream("GET", f"/v1/jobs/{job['id']}/events", headers=headers) as r:
            rest = list(_sse(r))
    assert [m["event"] for m in everything][0] == "start"
    assert [m["id"] for m in rest] == [m["id"] for m in everything[1:]]
    assert rest[-1]["event"] == "completed"
    # Each event says when it happened, so a replay shows the job's times, not the reader's.
    times = [datetime.fromisoformat(m["data"]["event_at"]) for m in everything]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    assert times[-1] >= datetime.fromisoformat(everything[-1]["data"]["started_at"])


def test_events_of_another_tenants_job_are_not_found(api_url, make_tenant):
    owner, other = make_tenant(), make_tenant()
    job = owner.submit({**TRAIN, "config": TINY_DDPM})
    with client(api_url, other.key) as http:
        response = http.get(f"/v1/jobs/{job['id']}/events")
    assert response.status_code == 404


def test_prefer_wait_returns_the_finished_job_of_a_quick_job(worker, tenant):
    response = tenant.post(
        "/v1/jobs", json={**TRAIN, "config": TINY_DDPM}, headers={"Prefer": "wait=60"}
    )
    assert response.status_code == 201
    assert response.headers["Preference-Applied"] == "wait=60"
    assert response.json()["status"] == "succeeded"


def test_prefer_wait_returns_a_running_job_after_n_seconds(worker, tenant):
    job = tenant.submit(LONG_TRAIN)
    tenant.wait(job["id"], until={"running"})
    response = tenant.get(f"/v1/jobs/{job['id']}", headers={"Prefer": "wait=2"})
    assert response.status_code == 200
    assert response.headers["Preference-Applied"] == "wait=2"
    assert response.json()["status"] == "running"
    tenant.post(f"/v1/jobs/{job['id']}/cancel")


def test_prefer_wait_beyond_the_maximum_is_capped_and_says_so(tenant):
    job = tenant.submit({**TRAIN, "config": TINY_DDPM})
    tenant.post(f"/v1/jobs/{job['id']}/cancel")
    response = tenant.get(f"/v1/jobs/{job['id']}", headers={"Prefer": "wait=600"})
    assert response.headers["Preference-Applied"] == "wait=60"
    assert response.json()["status"] == "canceled"


def test_malformed_prefer_wait_is_refused_naming_the_header(tenant):
    response = tenant.post(
        "/v1/jobs", json={**TRAIN, "config": TINY_DDPM}, headers={"Prefer": "wait=soon"}
    )
    assert response.status_code == 422
    assert response.json()["invalid_params"][0]["name"] == "Prefer"
