"""client.preview waits longer than the server holds a preview (SYNTHGEN_PREVIEW_WAIT_S,
30 s) before its 202: with the client's default 30 s read timeout a busy server's 202 came
too late and the README's preview line failed with a ReadTimeout."""

from __future__ import annotations

import httpx
from synthgen_client.sdk import Client


def test_the_preview_request_reads_for_longer_than_the_servers_wait():
    seen: dict[str, float] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        seen["read"] = request.extensions["timeout"]["read"]
        return httpx.Response(200, content=b"\x89PNG", headers={"X-Model-Version": "m:1"})

    client = Client("http://api", "key")
    client.http = httpx.Client(base_url="http://api", transport=httpx.MockTransport(answer),
                               timeout=30.0)  # fmt: skip
    grid = client.preview("m", steps=2)
    assert grid.png == b"\x89PNG"
    assert seen["read"] > 30 + 10  # the server's wait, and time to answer after it
