"""``Prefer: wait=N`` (RFC 7240): hold a job's answer until it ends or N seconds pass.

The request waits on the process's event hub (no thread, no polling), so hundreds can
wait at once; the database is read before and after the wait only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import anyio
from fastapi import Header, Response
from starlette.concurrency import run_in_threadpool

from api.hub import RESYNC, EventHub
from core.errors import InvalidRequest
from core.jobs.events import EventType
from core.jobs.schemas import JobOut
from core.jobs.states import TERMINAL

MAX_WAIT_S = 60


PreferHeader = Annotated[str | None, Header(max_length=1000)]


async def prefer_wait(prefer: PreferHeader = None) -> int | None:
    """``wait_seconds`` as a dependency (api/deps.py's PreferWaitDep). (async: a sync
    dependency would cost a thread-pool hop per request.)"""
    return wait_seconds(prefer)


def wait_seconds(prefer: str | None) -> int | None:
    """Seconds asked for with ``wait=N`` (a bare ``wait`` is the maximum); None without
    it. Other preferences are not supported and are not reported as applied."""
    for preference in (prefer or "").split(","):
        token = preference.split(";", 1)[0].strip()
        name, _, value = token.partition("=")
        if name.strip().lower() != "wait":
            continue
        value = value.strip().strip('"')
        if not value:
            return MAX_WAIT_S
        if not value.isdigit():
            raise InvalidRequest(
                f"Prefer: wait must be a whole number of seconds (at most {MAX_WAIT_S})",
                field="Prefer",
            )
        return min(int(value), MAX_WAIT_S)
    return None


async def hold(
    *,
    hub: EventHub,
    job_id: str,
    seconds: int,
    read: Callable[[], JobOut],
    response: Response,
) -> JobOut:
    """``read()`` the job once it is terminal, or after ``seconds``, whichever is first."""
    response.headers["Preference-Applied"] = f"wait={seconds}"
    await run_in_threadpool(hub.ensure_started)
    sub = hub.subscribe(job_id)
    try:
        job = await run_in_threadpool(read)  # after subscribing: an end now is not missed
        with anyio.move_on_after(seconds):
            while job.status not in TERMINAL:
                item = await sub.get()
                if item == RESYNC or getattr(item, "type", None) == EventType.completed:
                    job = await run_in_threadpool(read)
        if job.status not in TERMINAL:
            job = await run_in_threadpool(read)
        return job
    finally:
        hub.unsubscribe(sub)
