"""What the runner hands an engine: throttled progress writes, a cancel check, a heartbeat."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from core.config import Settings
from core.curves import service as curves
from core.db import session_scope
from core.jobs import events, transitions
from core.jobs.orm import Job
from core.jobs.states import JobStatus
from worker import preemption

log = logging.getLogger("synthgen.worker")


class JobProgress:
    """Turns ``progress(step, total, **metrics)`` calls into job-row updates.

    Writes at most every ``min_interval_s`` (the last call is always flushed by
    ``flush()``), with a ``progress`` event at most every ``settings.progress_interval_s``
    in the same transaction, and computes fraction and ETA. While training, every step's
    scalars (plus ``step_time_s``) are kept and written with the same flush as
    training-curve rows (core/curves), which the API serves while the job runs.
    """

    def __init__(
        self,
        settings: Settings,
        job_id: str,
        *,
        stage: str,
        min_interval_s: float = 0.5,
        meter: Callable[[str, int], None] | None = None,
    ) -> None:
        self.settings = settings
        self.job_id = job_id
        self.stage = stage
        self.min_interval_s = min_interval_s
        self.started = time.monotonic()
        self.last_write = 0.0
        self.last_event: float | None = None
        self.last: dict[str, Any] | None = None
        self.points: list[dict[str, float]] = []
        self.last_step: tuple[int, float] | None = None
        self.still_running = True
        self.max_seconds: float | None = None
        self.meter = meter  # (stage, step) → throughput metrics (worker/metrics.py)

    def set_stage(self, stage: str) -> None:
        self.stage = stage
        self.started = time.monotonic()

    def __call__(self, step: int, total: int, **metrics: Any) -> None:
        if self.meter is not None:
            self.meter(self.stage, step)
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
        if numeric and self.stage == "train":
            self._keep_point(step, numeric)
        if time.monotonic() - self.last_write >= self.min_interval_s:
            self.flush()

    def _keep_point(self, step: int, numeric: dict[str, float]) -> None:
        now = time.monotonic()
        point = {"step": float(step), **numeric}
        if self.last_step is not None and step > self.last_step[0]:
            point["step_time_s"] = (now - self.last_step[1]) / (step - self.last_step[0])
        self.last_step = (step, now)
        self.points.append(point)

    def flush(self) -> None:
        if self.last is None:
            return
        now = time.monotonic()
        due = self.last_event is None or now - self.last_event >= self.settings.progress_interval_s
        try:
            with events.session_scope(self.settings) as session:
                self.still_running = transitions.write_progress(
                    session=session, job_id=self.job_id, progress=self.last
                )
                curves.record(session=session, job_id=self.job_id, points=self.points)
                if self.still_running and due:
                    events.record(
                        session=session, job_id=self.job_id, type=events.EventType.progress
                    )
                    self.last_event = now
            self.points = []
        except OperationalError:
            # The database is away (restarting, failing over): training goes on and the
            # next write carries the progress (and the curve points kept meanwhile).
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
                    if not transitions.heartbeat(session=session, job_id=self.job_id):
                        return
            except Exception:  # noqa: BLE001, S112 - a missed beat is retried next interval
                continue
