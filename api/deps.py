"""Request dependencies as Annotated aliases: the one way a route gets what it works with
(the settings, a database session, the store, the tenant, the event hub, the outbox's
dispatcher, ``Prefer: wait``, an owned job). Routes never read ``request.app.state``,
call ``get_settings()`` or write ``Depends(...)`` themselves (tests/unit/api/
test_route_dependencies.py checks it), so what a route needs is in its signature."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.hub import EventHub
from api.waiting import prefer_wait
from core.config import Settings
from core.db import session_factory
from core.errors import RateLimited, Unauthorized
from core.jobs import queries
from core.jobs.orm import Job
from core.jobs.outbox import Dispatcher
from core.storage import Storage
from core.telemetry import logs
from core.tenants import service as tenants
from core.tenants.orm import Tenant


async def get_settings(request: Request) -> Settings:
    # async: a sync dependency costs a thread-pool hop per request.
    return request.app.state.settings  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings)]


def base_url(request: Request) -> str:
    """The URL the client reached the API at, for links in answers."""
    return str(request.base_url).rstrip("/")


def get_session(settings: SettingsDep) -> Iterator[Session]:
    session = session_factory(settings.database_url)()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


async def get_storage(request: Request) -> Storage:
    return request.app.state.storage  # type: ignore[no-any-return]


StorageDep = Annotated[Storage, Depends(get_storage)]


async def get_hub(request: Request) -> EventHub:
    # async: a sync dependency would cost a thread-pool hop on the submit hot path.
    return request.app.state.hub  # type: ignore[no-any-return]


HubDep = Annotated[EventHub, Depends(get_hub)]


async def get_dispatcher(request: Request) -> Dispatcher:
    return request.app.state.dispatcher  # type: ignore[no-any-return]


DispatcherDep = Annotated[Dispatcher, Depends(get_dispatcher)]

# ``Prefer: wait=N`` in seconds (api/waiting.py), None without it.
PreferWaitDep = Annotated[int | None, Depends(prefer_wait)]


class TenantCache:
    """Keys this process checked recently → their (detached, read-only) tenant.

    Only successful look-ups are kept, for ``ttl_s``: a revoked key keeps working here
    for at most that long, and an unknown key always costs a query (no negative cache,
    so a key created a moment ago works at once).
    """

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self._entries: dict[str, tuple[float, Tenant]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> Tenant | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key_hash: str, tenant: Tenant) -> None:
        if self.ttl_s <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # rare; cheaper than tracking recency per hit
            self._entries[key_hash] = (time.monotonic() + self.ttl_s, tenant)


async def get_tenant(request: Request) -> Tenant:
    """The key's tenant, from this process's cache when it checked the key lately (async,
    so that a cache hit costs no thread-pool hop; a miss reads in the pool)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send your API key as `Authorization: Bearer <key>`.")
    cache: TenantCache = request.app.state.tenant_cache
    key_hash = tenants.hash_key(token.strip())
    tenant = cache.get(key_hash)
    if tenant is None:
        settings: Settings = request.app.state.settings
        tenant = await run_in_threadpool(_authenticate, settings.database_url, token.strip())
        cache.put(key_hash, tenant)
    logs.bind(tenant=tenant.id)
    retry_after = request.app.state.rate_limiter.hit(key_hash)
    if retry_after is not None:
        raise RateLimited(
            "this API key sent more requests than its rate limit allows; slow down",
            retry_after=retry_after,
        )
    return tenant


def _authenticate(database_url: str, key: str) -> Tenant:
    with session_factory(database_url)() as session:
        tenant = tenants.authenticate(session=session, key=key)
        session.expunge(tenant)  # detached: read-only, shared by the requests that hit it
        return tenant


TenantDep = Annotated[Tenant, Depends(get_tenant)]


def owned_job(job_id: str, session: SessionDep, tenant: TenantDep) -> Job:
    """The job (404 for another tenant's), read before a stream starts; the session's
    connection goes back to the pool at once, since a stream may stay open for hours."""
    job = queries.get_job(session=session, tenant=tenant, job_id=job_id)
    session.close()
    return job


OwnedJobDep = Annotated[Job, Depends(owned_job)]
