"""GET /v1/jobs/{id}/events: the job's events as Server-Sent Events.

Replays the events after ``Last-Event-ID`` (all of them without it), then streams new ones
from the process's event hub until the job ends. Each SSE message has ``id`` (send it back
as ``Last-Event-ID`` to resume), ``event`` (the type) and ``data`` (the job object then,
plus ``type`` and ``event_id``). Idle streams get a comment every 15 s.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from starlette.concurrency import run_in_threadpool

from api.deps import HubDep, OwnedJobDep, SettingsDep
from api.hub import RESYNC
from core.config import Settings
from core.db import session_scope
from core.jobs import events, queries
from core.jobs.orm import JobEvent
from core.jobs.states import TERMINAL, JobStatus

router = APIRouter(prefix="/v1/jobs", tags=["events"])

RETRY_MS = 2000  # how soon a disconnected EventSource reconnects


def _backlog(settings: Settings, job_id: str, after_id: int) -> tuple[JobStatus, list[JobEvent]]:
    with session_scope(settings.database_url) as session:
        status = queries.status_of(session=session, job_id=job_id)
        rows = events.after(session=session, job_id=job_id, after_id=after_id)
    assert status is not None  # jobs are not deleted under a stream
    return status, rows


_ENCODED: OrderedDict[tuple[str, int, str], str] = OrderedDict()
_ENCODED_MAX = 1024


def _encoded(database: str, row: JobEvent, request: dict[str, Any], base_url: str) -> str:
    """The event's JSON, made once for all the streams watching its job: the hub hands
    each of them the same row, and hundreds may watch one job."""
    key = (database, row.id, base_url)
    data = _ENCODED.get(key)
    if data is None:
        rendered = events.render(row, request=request, base_url=base_url)
        data = _ENCODED[key] = json.dumps(rendered, separators=(",", ":"))
        if len(_ENCODED) > _ENCODED_MAX:
            _ENCODED.popitem(last=False)
    return data


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"description": "text/event-stream of the job's events"}},
)
async def job_events(
    job: OwnedJobDep,
    request: Request,
    settings: SettingsDep,
    hub: HubDep,
    last_event_id: Annotated[str | None, Header(max_length=100)] = None,
) -> AsyncIterator[ServerSentEvent]:
    base_url = str(request.base_url).rstrip("/")
    last = events.parse_id(last_event_id)

    def message(row: JobEvent) -> ServerSentEvent:
        data = _encoded(settings.database_url, row, job.request, base_url)
        return ServerSentEvent(
            raw_data=data, event=row.type, id=events.public_id(row.id), retry=RETRY_MS
        )

    await run_in_threadpool(hub.ensure_started)
    sub = hub.subscribe(job.id)
    try:
        # Subscribed first, then the backlog: an event committed in between arrives twice
        # (dropped by id below), never zero times. A terminal status read here means its
        # ``completed`` event is committed and in the backlog.
        status, rows = await run_in_threadpool(_backlog, settings, job.id, last)
        ended = status in TERMINAL
        while True:
            for row in rows:
                if row.id <= last or row.payload is None:
                    continue
                last = row.id
                yield message(row)
                ended = ended or row.type == events.EventType.completed
            if ended:
                return
            item = await sub.get()
            if item == RESYNC:
                status, rows = await run_in_threadpool(_backlog, settings, job.id, last)
                ended = status in TERMINAL
            else:
                assert isinstance(item, JobEvent)
                rows = [item]
    finally:
        hub.unsubscribe(sub)
