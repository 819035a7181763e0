"""The client's wait does not hang on a stream that never delivers the job's end."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from synthgen_client import events

JOB = "job-1"


def keep_alives_only() -> Iterator[bytes]:
    """An event stream that stays open with keep-alive comments and no events, for at
    most 30 s (a wait that does not check the status would read it to its end)."""
    stop = time.monotonic() + 30
    while time.monotonic() < stop:
        yield b": keep-alive\n\n"
        time.sleep(0.02)


def test_a_job_that_ended_while_its_stream_stays_silent_is_answered_by_a_status_check():
    statuses = iter(["running", "succeeded"])
    reads: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(
                200, headers={"content-type": "text/event-stream"}, content=keep_alives_only()
            )
        status = next(statuses, "succeeded")
        reads.append(status)
        return httpx.Response(200, json={"id": JOB, "status": status})

    updates: list[dict] = []
    http = httpx.Client(transport=httpx.MockTransport(answer), base_url="http://api.test")
    started = time.monotonic()
    done = events.wait_for_job(
        http, JOB, timeout_s=120, on_update=updates.append, status_check_s=0.2
    )
    assert done == {"id": JOB, "status": "succeeded"}
    assert reads == ["running", "succeeded"]  # checked while running, then found it ended
    assert updates[-1]["status"] == "succeeded"
    assert time.monotonic() - started < 20


def test_a_silent_stream_still_times_out_at_the_deadline():
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(200, content=keep_alives_only())
        return httpx.Response(200, json={"id": JOB, "status": "running"})

    http = httpx.Client(transport=httpx.MockTransport(answer), base_url="http://api.test")
    with pytest.raises(TimeoutError, match="still running"):
        events.wait_for_job(http, JOB, timeout_s=0.5, status_check_s=60)
