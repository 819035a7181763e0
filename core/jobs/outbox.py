"""Marking outbox rows published in batches, off the request path.

After a job's message is on the broker its outbox row gets ``published_at``, so the
reconciler does not send it again. Doing that UPDATE inside each submit request costs a
transaction per request (a quarter of the submit path's time, bench/submission.py); here a
background thread marks every row published in the last ``interval_s`` with one UPDATE.

If the process dies before a batch is written, the reconciler publishes those jobs a
second time after its grace period: the runner's compare-and-set start lets only one of
the two messages run the job, so the worst case is a redundant message, never a lost job.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import text, update

from core.db import session_scope, utcnow
from core.jobs.orm import Outbox

log = logging.getLogger("synthgen.outbox")


class OutboxMarker:
    def __init__(self, database_url: str, interval_s: float = 0.2) -> None:
        self.database_url, self.interval_s = database_url, interval_s
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def mark(self, job_id: str) -> None:
        with self._lock:
            self._pending.append(job_id)
            if self._thread is None:
                # Started on first use so that forked server workers each get their own.
                self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
                self._thread.start()

    def flush(self) -> int:
        """Write what is pending now; returns how many rows were marked."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        try:
            with session_scope(self.database_url) as session:
                if session.get_bind().dialect.name == "postgresql":
                    # Losing this batch in a crash only costs a second message (above).
                    session.execute(text("SET LOCAL synchronous_commit TO OFF"))
                session.execute(
                    update(Outbox)
                    .where(Outbox.job_id.in_(batch), Outbox.published_at.is_(None))
                    .values(published_at=utcnow())
                )
        except Exception:  # noqa: BLE001 - the reconciler covers unmarked rows
            log.warning("could not mark %d outbox rows published", len(batch), exc_info=True)
        return len(batch)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval_s)
            self.flush()
