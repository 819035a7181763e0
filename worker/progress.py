"""What the runner hands an engine: throttled progress writes, a cancel check, a heartbeat."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from core.db import session_scope
from core.jobs import service as jobs
from core.jobs.orm import Job
from core.jobs.states import JobStatus
from worker import preemption

log = logging.getLogger("synthgen.worker")


class JobProgress:
    """Turns ``progress(step, total, **metrics)`` calls into job-row updates.

    Writes at most every ``min_interval_s`` (the last call is always flushed by
    ``flush()``), computes fraction and ETA, and keeps a thinned loss history for the
    training-curve artifact.
    """

    def __init__(
        self,
        database_url: str,
        job_id: str,
        *,
        stage: str,
        min_interval_s: float = 0.5,
        history_points: int = 500,
    ) -> None:
        self.database_url = database_url
        self.job_id = job_id
        self.stage = stage
        self.min_interval_s = min_interval_s
        self.started = time.monotonic()
        self.last_write = 0.0
        self.last: dict[str, Any] | None = None
        self.history: list[dict[str, float]] = []
        self.history_every = 1
        self.history_points = history_points
        self.still_running = True
        self.max_seconds: float | None = None

    def set_stage(self, stage: str) -> None:
        self.stage = stage
        self.started = time.monotonic()

    def __call__(self, step: int, total: int, **metrics: Any) -> None:
        numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
        fraction = min(step / total, 1.0) if total else 0.0
        elapsed = time.monotonic() - self.started
        if self.max_seconds:
            # A time budget ends the run when it is spent, whatever max_steps says.
            fraction = max(fraction, min(elapsed / self.max_seconds, 1.0))
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
        self.last = {
            "step": step,
            "total": total,
            "fraction": round(fraction, 4),
            "eta_seconds": round(eta, 1) if eta is not None else None,
            "stage": self.stage,
            "metrics": numeric,
        }
        if numeric and self.stage == "train" and step % self.history_every == 0:
            self.history.append({"step": float(step), **numeric})
            if len(self.history) > self.history_points:
                # Keep every other point and halve the sampling rate: bounded, evenly spaced.
                self.history = self.history[::2]
                self.history_every *= 2
        if time.monotonic() - self.last_write >= self.min_interval_s:
            self.flush()

    def flush(self) -> None:
        if self.last is None:
            return
        try:
            with session_scope(self.database_url) as session:
                self.still_running = jobs.write_progress(
                    session=session, job_id=self.job_id, progress=self.last
                )
        except OperationalError:
            # The database is away (restarting, failing over): training goes on and the
            # next write carries the progress; the job's row is the truth, not this.
            log.warning("job %s: progress not written, database unavailable", self.job_id)
        self.last_write = time.monotonic()


class CancelCheck:
    """``should_stop()``: true once this run of the job is over — the job was canceled, or
    taken back by the reconciler (its status, or its ``attempts`` when another worker has
    claimed it since: a worker paused past its heartbeat timeout must not go on beside its
    successor) — or the worker is shutting down (``preempted``). Reads the row at most
    every ``min_interval_s`` so it can be polled once per training or sampling step; while
    the database is unreachable the job keeps going and the check is retried every
    ``retry_s``."""

    def __init__(
        self,
        database_url: str,
        job_id: str,
        attempt: int,
        min_interval_s: float = 0.0,
        retry_s: float = 1.0,
    ) -> None:
        self.database_url = database_url
        self.job_id = job_id
        self.attempt = attempt
        self.min_interval_s = min_interval_s
        self.retry_s = retry_s
        self.next_check = 0.0
        self.stopped = False
        self.preempted = False

    def __call__(self) -> bool:
        if self.stopped:
            return True
        if preemption.requested():
            self.stopped = self.preempted = True
            return True
        now = time.monotonic()
        if now >= self.next_check:
            try:
                with session_scope(self.database_url) as session:
                    row = session.execute(
                        select(Job.status, Job.attempts).where(Job.id == self.job_id)
                    ).one_or_none()
            except OperationalError:
                self.next_check = now + self.retry_s
                return False
            self.next_check = now + self.min_interval_s
            self.stopped = row is None or (row.status, row.attempts) != (
                JobStatus.running,
                self.attempt,
            )
        return self.stopped


class Heartbeat:
    """Beats the job's heartbeat from a thread, so a long step never looks like a dead worker."""

    def __init__(self, database_url: str, job_id: str, interval_s: float) -> None:
        self.database_url = database_url
        self.job_id = job_id
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                with session_scope(self.database_url) as session:
                    if not jobs.heartbeat(session=session, job_id=self.job_id):
                        return
            except Exception:  # noqa: BLE001, S112 - a missed beat is retried next interval
                continue
