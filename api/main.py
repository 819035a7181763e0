"""The HTTP edge: ``create_app()`` wires routers, error handlers and middleware."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import console, errors, metrics, openapi
from api.deps import TenantCache
from api.hub import EventHub
from api.ratelimit import RateLimiter
from api.routes import (
    curves,
    datasets,
    engines,
    estimates,
    events,
    health,
    imports,
    jobs,
    models,
    preview,
    uploads,
    webhooks,
)
from api.telemetry import RequestTelemetry
from core import storage as storage_mod
from core.config import Settings, get_settings
from core.jobs.outbox import Dispatcher

PROBLEM_413 = (
    b'{"type":"https://synthgen.dev/problems/request-too-large","title":"Request too large",'
    b'"status":413,"detail":"the request body exceeds the limit of %d bytes"}'
)


class BodyLimit:
    """Reject bodies over ``limit`` bytes before any handler reads them (413). Paths
    under ``exempt`` (uploads, which enforce their own limit) pass."""

    def __init__(self, app: ASGIApp, limit: int, exempt: str) -> None:
        self.app = app
        self.limit = limit
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._reject(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = PROBLEM_413 % self.limit
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):  # noqa: N818 - internal signal
    pass


def quiet_gc() -> None:
    """Keep the cyclic garbage collector off the request path. Everything imported and
    built at start (FastAPI, SQLAlchemy, Celery, the pydantic schemas) is frozen out of
    its reach, and it runs after 20,000 new objects rather than 700: a request makes
    hundreds, so the default ran it every few requests, over the whole heap at times.
    Two A/B runs of bench/submission.py's load: 4-18 % more submissions/s, p99 17-37 %
    lower, on 2 cores (BENCHMARKS.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    dispatcher = Dispatcher(settings)
    hub = EventHub(settings)  # started by the first stream or held request

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Route handlers are sync and run in this pool. Under load, AnyIO's default of 40
        # threads per process fight over the GIL and the tail latency suffers: 8 gave ~20%
        # more submissions/s and a p99 5x lower in bench/submission.py on 2 cores.
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        if settings.api_quiet_gc:
            quiet_gc()
        yield
        dispatcher.close()  # send and mark what is left before the process exits
        hub.close()

    # /docs and /redoc with Swagger UI and ReDoc served from the fastapi-offline package
    # instead of a CDN, so they work on clusters without internet; no validator badge
    # either (Swagger UI would fetch it from validator.swagger.io).
    app = FastAPIOffline(
        lifespan=lifespan,
        title="synthgen",
        version="0.1.0",
        description="Train generative image models, generate synthetic datasets, evaluate them.",
        swagger_ui_parameters={"validatorUrl": None},
        generate_unique_id_function=openapi.operation_id,
    )
    app.state.settings = settings
    app.state.storage = storage_mod.from_settings(settings)
    app.state.tenant_cache = TenantCache(settings.auth_cache_s)
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    app.state.dispatcher = dispatcher
    app.state.hub = hub
    errors.install(app)
    routes = (health, jobs, estimates, engines, models, metrics, preview, curves, events, webhooks)
    for module in (*routes, datasets, imports, uploads):
        app.include_router(module.router)
    console.mount(app, upload_origin=app.state.storage.url_origin())
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes, exempt=uploads.PREFIX)
    app.add_middleware(RequestTelemetry)  # outermost: rejected bodies are counted too
    openapi.install(app)
    return app


app = create_app()
