"""Parsing ``Prefer: wait`` on the server and the SSE wire format in the client."""

from __future__ import annotations

import asyncio

import pytest
from synthgen_client.events import _parse

from api.waiting import MAX_WAIT_S, prefer_wait
from core.errors import InvalidRequest


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("respond-async", None),
        ("wait=5", 5),
        ("respond-async, wait=10", 10),
        ('wait="7"', 7),
        ("wait", MAX_WAIT_S),
        ("wait=600", MAX_WAIT_S),
        ("wait=0", 0),
    ],
)
def test_prefer_wait_is_read_from_the_header(header, seconds):
    assert asyncio.run(prefer_wait(header)) == seconds


def test_prefer_wait_that_is_not_a_number_is_refused():
    with pytest.raises(InvalidRequest) as refused:
        asyncio.run(prefer_wait("wait=later"))
    assert refused.value.field == "Prefer"


def test_sse_messages_are_parsed_with_comments_skipped():
    lines = [
        ": ping",
        "",
        "id: evt_3",
        "event: progress",
        'data: {"type": "progress",',
        'data: "status": "running"}',
        "retry: 2000",
        "",
    ]
    seen = []
    (event,) = _parse(iter(lines), lambda: seen.append(1))
    assert (event.id, event.type) == ("evt_3", "progress")
    assert event.job == {"type": "progress", "status": "running"}
    assert len(seen) == len(lines)
