"""The event hub: one listener per API process fans job events out to open streams.

Streams (``GET /v1/jobs/{id}/events``) and held requests (``Prefer: wait``) subscribe to
a job here; they never poll the database themselves. One thread per process listens:

- Postgres: ``LISTEN`` on the channel that ``core.jobs.events.record`` notifies inside
  the event's transaction. Postgres delivers a notification only when that transaction
  commits, in commit order, so nothing is announced that did not happen and nothing that
  happened is missed while the connection is up. Per batch of notifications the hub
  reads the events of jobs somebody watches, in one query.
- SQLite (the embedded stack, whose worker is another process): one query per tick for
  the events after the last one seen. SQLite has one writer at a time, so ids are
  committed in order and "after the last id" misses none.

After a lost Postgres connection the hub cannot know what it missed: it tells every
subscriber to ``RESYNC`` (read its job's events again after the last one it sent).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url

from core.config import Settings
from core.db import session_scope
from core.jobs import events
from core.jobs.orm import JobEvent

log = logging.getLogger("synthgen.hub")

RESYNC = "resync"
Item = JobEvent | str


@dataclass(eq=False)
class Subscription:
    job_id: str
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Item] = field(default_factory=asyncio.Queue)

    async def get(self) -> Item:
        return await self.queue.get()


def _put_all(batch: list[tuple[Subscription, Item]]) -> None:
    for sub, item in batch:
        sub.queue.put_nowait(item)


class EventHub:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._lock = threading.Lock()
        self._started = False
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    # -- subscribers (called on the event loop) -------------------------------------------

    def subscribe(self, job_id: str) -> Subscription:
        sub = Subscription(job_id, asyncio.get_running_loop())
        with self._lock:
            self._subs[job_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.job_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[sub.job_id]

    def watched(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subs.values())

    # -- the listener ---------------------------------------------------------------------

    def ensure_started(self) -> None:
        """Start the listener once; returns when it hears every event committed from now
        on (so a subscriber that then reads the backlog misses nothing). Blocking."""
        with self._lock:
            if self._started:
                return
            self._started = True
        ready = threading.Event()
        target = self._poll_sqlite if self.settings.is_sqlite else self._listen_postgres
        self._thread = threading.Thread(target=target, args=(ready,), name="event-hub", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10):
            log.warning("the event listener is not connected yet; streams may resync later")

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _dispatch(self, rows: list[JobEvent]) -> None:
        with self._lock:
            deliveries: list[tuple[Subscription, Item]] = [
                (sub, row) for row in rows for sub in self._subs.get(row.job_id, ())
            ]
        self._hand_over(deliveries)

    def _resync_all(self) -> None:
        with self._lock:
            deliveries: list[tuple[Subscription, Item]] = [
                (s, RESYNC) for group in self._subs.values() for s in group
            ]
        self._hand_over(deliveries)

    @staticmethod
    def _hand_over(deliveries: list[tuple[Subscription, Item]]) -> None:
        """One wake-up per event loop, however many of its streams get something."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Subscription, Item]]] = {}
        for sub, item in deliveries:
            by_loop.setdefault(sub.loop, []).append((sub, item))
        for loop, batch in by_loop.items():
            loop.call_soon_threadsafe(_put_all, batch)

    def _fetch_watched(self, pairs: list[tuple[int, str]]) -> list[JobEvent]:
        with self._lock:
            ids = [event_id for event_id, job_id in pairs if job_id in self._subs]
        if not ids:
            return []
        with session_scope(self.settings.database_url) as session:
            return events.by_ids(session=session, ids=ids)

    def _poll_sqlite(self, ready: threading.Event) -> None:
        with session_scope(self.settings.database_url) as session:
            last = events.last_id(session=session)
        ready.set()
        while not self._closed.wait(self.settings.event_poll_interval_s):
            try:
                with session_scope(self.settings.database_url) as session:
                    pairs = events.newer_than(session=session, last_id=last)
                if pairs:
                    self._dispatch(self._fetch_watched(pairs))
                    # Only once handed over: a fetch that fails is tried again next tick
                    # (moving on first would lose those events for every open stream).
                    last = pairs[-1][0]
            except Exception:  # noqa: BLE001 - a locked or busy database: next tick
                log.warning("event poll failed; retrying", exc_info=True)

    def _listen_postgres(self, ready: threading.Event) -> None:
        import psycopg

        url = make_url(self.settings.database_url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while not self._closed.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {events.CHANNEL}")
                    ready.set()
                    # Streams opened while this was not listening may have missed events.
                    self._resync_all()
                    while not self._closed.is_set():
                        notes = list(conn.notifies(timeout=1.0, stop_after=1))
                        pairs = []
                        for note in notes:
                            job_id, _, event_id = note.payload.partition(" ")
                            pairs.append((int(event_id), job_id))
                        if pairs:
                            self._dispatch(self._fetch_watched(pairs))
            except Exception:  # noqa: BLE001 - reconnect; subscribers resync
                log.warning("event listener lost its connection; reconnecting", exc_info=True)
                self._closed.wait(1.0)
