"""The API's dispatcher: new jobs' tasks published and their outbox rows marked, in
batches, from one background thread per API process, off the request path.

A submit answers 201 once the job's rows are committed (core/jobs/submission.py); the job
is durable then, and its outbox row says its message is still to be sent. The request
hands the job id here and returns. The dispatcher thread wakes at once, sends what has
gathered meanwhile in one round trip to the broker (core/queue.py's ``publish_jobs``), and
every ``mark_interval_s`` marks what it sent with one UPDATE (a transaction per request
for that mark was a quarter of the submit path's time; Celery's ``send_task`` per request
was as much again, bench/submission.py).

What can go wrong loses no job. The broker down: the batch is logged and dropped, its
rows stay unmarked, and the reconciler publishes them once they are 5 s old. The process
dying before a batch is sent or marked: the same, or a second message for a job whose
first was sent, which the runner's compare-and-set start ignores (a job runs once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from prometheus_client import Counter
from sqlalchemy import text, update
from sqlalchemy.orm import Session

from core import queue
from core.config import Settings
from core.db import session_scope, utcnow
from core.jobs.orm import Outbox

log = logging.getLogger("synthgen.outbox")

MESSAGES = Counter(
    "synthgen_job_messages_total",
    "Job messages the API's dispatcher sent to the broker, or could not send (those jobs "
    "wait for the reconciler), by outcome.",
    ["outcome"],
)
for _outcome in ("sent", "failed"):
    MESSAGES.labels(outcome=_outcome)  # both series from the start, at 0


def mark_published(*, session: Session, job_ids: Sequence[str]) -> None:
    """Set the outbox rows' ``published_at``, in the caller's transaction. Turns its
    synchronous commit off (below): call it in a transaction that holds nothing else."""
    if session.get_bind().dialect.name == "postgresql":
        # Losing this update in a crash costs only a second message, which the runner's
        # compare-and-set start ignores, so it needn't wait for the WAL flush (a quarter
        # of the submit path's time when it was marked inline; bench/submission.py).
        session.execute(text("SET LOCAL synchronous_commit TO OFF"))
    session.execute(
        update(Outbox)
        .where(Outbox.job_id.in_(job_ids), Outbox.published_at.is_(None))
        .values(published_at=utcnow())
    )


class Dispatcher:
    def __init__(
        self, settings: Settings, *, mark_interval_s: float = 0.2, linger_s: float = 0.005
    ) -> None:
        self.settings, self.mark_interval_s, self.linger_s = settings, mark_interval_s, linger_s
        self._to_send: list[tuple[str, str]] = []  # (job id, queue)
        self._to_mark: list[str] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def dispatch(self, job_id: str, queue_name: str) -> None:
        """Send the committed job ``job_id``'s task to ``queue_name`` (a base name, as
        ``queue.queue_for`` gives) soon; returns at once."""
        with self._lock:
            self._to_send.append((job_id, queue_name))
            if self._thread is None:
                # Started on first use so that each server worker process gets its own.
                self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)
                self._thread.start()
        self._wake.set()

    def send(self) -> int:
        """Publish what is waiting now; returns how many messages went out."""
        with self._lock:
            batch, self._to_send = self._to_send, []
        if not batch:
            return 0
        try:
            queue.publish_jobs(self.settings, batch)
        except Exception:  # noqa: BLE001 - the outbox rows stay unmarked: the reconciler sends them
            log.warning("could not publish %d jobs; the reconciler will", len(batch), exc_info=True)
            MESSAGES.labels(outcome="failed").inc(len(batch))
            return 0
        MESSAGES.labels(outcome="sent").inc(len(batch))
        with self._lock:
            self._to_mark.extend(job_id for job_id, _ in batch)
        return len(batch)

    def mark(self) -> int:
        """Mark the outbox rows of what was sent; returns how many."""
        with self._lock:
            batch, self._to_mark = self._to_mark, []
        if not batch:
            return 0
        try:
            with session_scope(self.settings.database_url) as session:
                mark_published(session=session, job_ids=batch)
        except Exception:  # noqa: BLE001 - the reconciler covers unmarked rows
            log.warning("could not mark %d outbox rows published", len(batch), exc_info=True)
        return len(batch)

    def close(self) -> None:
        """Send and mark what is left (the server shutting down)."""
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.send()
        self.mark()

    def _run(self) -> None:
        marked = time.monotonic()
        while not self._closed:
            if self._wake.wait(self.mark_interval_s) and self.linger_s:
                # Let the submits of the next few ms join this batch: fewer round trips
                # and wake-ups under load, for a job that waits 5 ms more for a worker.
                time.sleep(self.linger_s)
            self._wake.clear()  # before taking the batch: a later dispatch wakes us again
            self.send()
            if time.monotonic() - marked >= self.mark_interval_s:
                self.mark()
                marked = time.monotonic()
