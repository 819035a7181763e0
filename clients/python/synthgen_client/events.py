"""Following a job's events from a client, and the tenant's webhook secret.

``iter_events`` reads ``GET /v1/jobs/{id}/events`` (Server-Sent Events) and reconnects
with ``Last-Event-ID`` when the connection drops, so no event is lost or repeated;
``wait_for_job`` follows that stream to the job's end and falls back to polling
``GET /v1/jobs/{id}`` when the stream cannot be had (an older server, a proxy that
buffers). Each function takes the SDK's ``httpx.Client`` (base URL and API key set).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from synthgen_client.answers import TERMINAL
from synthgen_client.errors import ApiError

OnUpdate = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Event:
    id: str  # evt_…: the webhook-id of the same event
    type: str  # start, progress, output, completed
    job: dict[str, Any]  # the job object at that moment, with "type" and "event_id"


class StreamUnavailable(Exception):
    """The event stream could not be read (after retries)."""


def _problem(response: httpx.Response) -> ApiError:
    response.read()
    try:
        problem = response.json()
    except ValueError:
        problem = {"title": response.reason_phrase, "detail": response.text[:500]}
    return ApiError(problem, response.status_code)


def _parse(lines: Iterator[str], on_line: Callable[[], None]) -> Iterator[Event]:
    """The SSE wire format (WHATWG HTML, "Server-sent events"): fields until a blank line."""
    fields: dict[str, str] = {}
    data: list[str] = []
    for line in lines:
        on_line()
        if not line:
            if data:
                yield Event(
                    fields.get("id", ""),
                    fields.get("event", "message"),
                    json.loads("\n".join(data)),
                )
            fields, data = {}, []
            continue
        if line.startswith(":"):
            continue  # a keep-alive comment
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name in ("id", "event"):
            fields[name] = value


def iter_events(
    http: httpx.Client,
    job_id: str,
    last_event_id: str | None = None,
    *,
    retries: int = 5,
    on_line: Callable[[], None] = lambda: None,
) -> Iterator[Event]:
    """The job's events after ``last_event_id`` (all without it), live until it ends.

    A dropped connection is resumed from the last event received; ``retries`` failures in
    a row (without an event between them) raise StreamUnavailable. An error answer the
    server means (401, 404...) raises ApiError at once. ``on_line`` is called for every
    line received, keep-alives included (``wait_for_job`` checks its deadline there).
    """
    failures = 0
    while True:
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        try:
            # The server sends a keep-alive comment every 15 s, well within the read timeout.
            # A plain (connect, read, write, pool) tuple: the caller's client may be httpx's
            # or httpx2's (Starlette's TestClient picks httpx2 when it is installed), and
            # each refuses the other's Timeout class.
            t = http.timeout
            timeout = (t.connect, 60.0, t.write, t.pool)
            with http.stream(
                "GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=timeout
            ) as response:
                if 400 <= response.status_code < 500:
                    raise _problem(response)
                if response.status_code != 200:
                    raise StreamUnavailable(f"the event stream answered {response.status_code}")
                for event in _parse(response.iter_lines(), on_line):
                    failures = 0
                    last_event_id = event.id or last_event_id
                    yield event
                    if event.type == "completed":
                        return
            # Closed without a ``completed`` event: a job from before events were kept,
            # or a server going away (a restart) that ended the response cleanly.
            status = _get(http, job_id)["status"]
            if status in TERMINAL:
                return
            raise StreamUnavailable(f"the stream ended while the job is {status}")
        except (httpx.TransportError, StreamUnavailable) as exc:
            failures += 1
            if failures > retries:
                raise StreamUnavailable(f"event stream of job {job_id}: {exc}") from exc
            time.sleep(min(0.5 * 2**failures, 10.0))


class _Ended(Exception):  # noqa: N818 - not an error: the wait's answer, found early
    def __init__(self, job: dict[str, Any]) -> None:
        self.job = job


def wait_for_job(
    http: httpx.Client,
    job_id: str,
    timeout_s: float = 3600,
    on_update: OnUpdate | None = None,
    *,
    poll_s: float = 1.0,
    status_check_s: float = 60.0,
) -> dict[str, Any]:
    """The job once it has ended, following its events; ``on_update(job)`` sees each one.
    Polls instead when the stream is unavailable. Raises TimeoutError after ``timeout_s``.

    While the stream is open the job's status is also read every ``status_check_s``
    (keep-alives arrive every 15 s): an event the stream never delivers, whatever lost
    it, delays the answer by that much instead of leaving the wait open until timeout."""
    deadline = time.monotonic() + timeout_s
    next_check = time.monotonic() + status_check_s

    def check_status() -> None:
        nonlocal next_check
        now = time.monotonic()
        if now < next_check and now <= deadline:
            return
        next_check = now + status_check_s
        job = _get(http, job_id)
        if job["status"] in TERMINAL:
            raise _Ended(job)
        if now > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']} after {timeout_s}s")

    try:
        for event in iter_events(http, job_id, on_line=check_status):
            if on_update is not None:
                on_update(event.job)
        return _get(http, job_id)
    except _Ended as ended:
        if on_update is not None:
            on_update(ended.job)
        return ended.job
    except StreamUnavailable:
        pass
    except ApiError as exc:
        if exc.status in (401, 403):
            raise
        # e.g. a server without the stream: polling says whether the job exists.
    while True:
        job = _get(http, job_id)
        if on_update is not None:
            on_update(job)
        if job["status"] in TERMINAL:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']} after {timeout_s}s")
        time.sleep(poll_s)


def _call(http: httpx.Client, method: str, path: str) -> dict[str, Any]:
    response = http.request(method, path)
    if response.status_code >= 400:
        raise _problem(response)
    return response.json()  # type: ignore[no-any-return]


def _get(http: httpx.Client, job_id: str) -> dict[str, Any]:
    return _call(http, "GET", f"/v1/jobs/{job_id}")


def get_webhook_secret(http: httpx.Client) -> str:
    """The tenant's signing secret (``whsec_…``), for ``standardwebhooks.Webhook``."""
    return str(_call(http, "GET", "/v1/webhooks/secret")["key"])


def rotate_webhook_secret(http: httpx.Client) -> str:
    """A new signing secret; deliveries carry the old one's signature too for 24 h."""
    return str(_call(http, "POST", "/v1/webhooks/secret/rotate")["key"])
