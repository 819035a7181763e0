"""client/events.py against the real API (uvicorn on loopback), worker and Postgres."""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from synthgen_client import events
from synthgen_client.sdk import ApiError

from api.main import create_app
from tests.integration.conftest import TINY_DDPM
from tests.integration.live_server import client, serve
from tests.servers import free_port

pytestmark = pytest.mark.integration

TRAIN = {"kind": "train", "engine": "ddpm", "dataset": "shapes", "model_name": "followed"}
LONG_TRAIN = {**TRAIN, "config": {**TINY_DDPM, "max_steps": 100_000}}


def test_wait_for_job_follows_the_stream_to_the_end(settings, worker, tenant):
    job = tenant.submit({**TRAIN, "config": TINY_DDPM})
    updates: list[dict] = []
    with serve(create_app(settings)) as url, client(url, tenant.key) as http:
        done = events.wait_for_job(http, job["id"], timeout_s=240, on_update=updates.append)
    assert done["status"] == "succeeded"
    assert [u["type"] for u in updates][0] == "start"
    assert updates[-1]["type"] == "completed" and updates[-1]["status"] == "succeeded"


class _NoStreams:
    """The API behind something that cannot stream (an older server, a buffering proxy)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/events"):
            await JSONResponse({"title": "Not found"}, status_code=404)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def test_wait_for_job_polls_when_the_stream_is_unavailable(settings, worker, tenant):
    job = tenant.submit({**TRAIN, "config": TINY_DDPM})
    updates: list[dict] = []
    with TestClient(_NoStreams(create_app(settings)), headers=tenant.headers) as http:
        done = events.wait_for_job(
            http, job["id"], timeout_s=240, on_update=updates.append, poll_s=0.2
        )
    assert done["status"] == "succeeded"
    assert "type" not in updates[-1]  # polled job objects, not events
    assert updates[-1]["status"] == "succeeded"


def test_wait_for_job_of_an_unknown_job_raises_not_found(settings, tenant):
    with serve(create_app(settings)) as url, client(url, tenant.key) as http:
        with pytest.raises(ApiError) as raised:
            events.wait_for_job(http, "no-such-job", timeout_s=10)
    assert raised.value.status == 404


def test_iter_events_reconnects_with_last_event_id_after_the_server_restarts(
    settings, worker, tenant
):
    job = tenant.submit(LONG_TRAIN)
    port = free_port()
    seen: list[events.Event] = []
    with ExitStack() as servers:
        url = servers.enter_context(serve(create_app(settings), port=port))
        with client(url, tenant.key) as http:
            for event in events.iter_events(http, job["id"]):
                seen.append(event)
                if len(seen) == 2:
                    servers.close()  # the server goes away under the open stream
                    servers.enter_context(serve(create_app(settings), port=port))
                elif len(seen) == 4:
                    tenant.post(f"/v1/jobs/{job['id']}/cancel")
    ids = [int(e.id.removeprefix("evt_")) for e in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)  # nothing repeated
    assert seen[0].type == "start" and seen[-1].type == "completed"
    assert seen[-1].job["status"] == "canceled"


def test_webhook_secret_can_be_read_and_rotated(settings, tenant):
    with serve(create_app(settings)) as url, client(url, tenant.key) as http:
        first = events.get_webhook_secret(http)
        assert events.get_webhook_secret(http) == first
        rotated = events.rotate_webhook_secret(http)
        assert events.get_webhook_secret(http) == rotated != first
    assert first.startswith("whsec_")
