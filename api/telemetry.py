"""The outermost middleware: request ids, request metrics and the JSON access line.

Each request gets an id (the caller's ``X-Request-ID`` when it is a sane token, a new
one otherwise), returned in the ``X-Request-ID`` response header and stamped on every
log line of the request with the tenant and job once known (core/telemetry/logs.py).
The request is counted and timed by its route template, and one access line is logged.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import metrics
from core.telemetry import logs

HEADER = "x-request-id"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Scrapes and health checks arrive every few seconds; they are counted, not logged.
_QUIET_ROUTES = frozenset({"/metrics", "/healthz", "/readyz"})
access_log = logging.getLogger("synthgen.access")


class RequestTelemetry:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        # Not reset afterwards: the request runs in its own task, and an unhandled error
        # is logged after this returns, by the error middleware outside this one.
        logs.start(request_id=request_id)
        started = time.perf_counter()
        status = 500  # what the client gets when the app raises before responding

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (HEADER.encode(), request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            route = _route_template(scope.get("route"))
            metrics.observe_request(method, route, status, seconds, held=_held(scope, route))
            job_id = scope.get("path_params", {}).get("job_id")
            if job_id is not None:
                logs.bind(job_id=str(job_id))
            if route not in _QUIET_ROUTES:
                access_log.info(
                    "%s %s %s",
                    method,
                    route,
                    status,
                    extra={
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                    },
                )


def _held(scope: Scope, route: str) -> bool:
    if route.endswith("/events"):
        return True
    return any(name == b"prefer" and b"wait=" in value.lower() for name, value in scope["headers"])


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == HEADER.encode():
            candidate = value.decode("latin-1")
            if _SANE_ID.fullmatch(candidate):
                return candidate
    return uuid.uuid4().hex


def _route_template(route: BaseRoute | None) -> str:
    # Unmatched paths share one label: a scan of random URLs must not mint series.
    return str(getattr(route, "path", "unmatched")) if route is not None else "unmatched"
