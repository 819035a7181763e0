"""Per-tenant limits, so one tenant cannot take the service for itself.

Checked at submit (QuotaExceeded → 429 with Retry-After):
- queued jobs: at most ``max_queued_jobs`` waiting — counted by the statement that
  inserts the job (core/jobs/submission.py), so it costs the submit no round trip;
- GPU time: run time of the tenant's jobs in the last 24 h under ``gpu_seconds_per_day``
  (jobs running now count up to now);
- storage: the artifacts of the tenant's kept jobs under ``max_storage_bytes``.
GPU time and storage read a tenant's rows at most every ``USAGE_CACHE_S`` per process, not
on every submit: a tenant can overshoot by what its jobs use meanwhile (at most
``USAGE_CACHE_S`` × ``max_running_jobs`` GPU seconds; the storage its jobs write).

Checked when a worker claims a job: at most ``max_running_jobs`` of a tenant's jobs run
at once. A job over it is not refused, it waits in the queue (the reconciler sends its
message again) — a tenant with a burst of jobs gets them run, just not all at once.

A setting of 0 turns its limit off.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.artifacts.orm import Artifact
from core.config import Settings
from core.db import as_utc, utcnow
from core.errors import QuotaExceeded
from core.jobs.orm import Job
from core.jobs.states import TERMINAL, JobStatus

DAY = timedelta(days=1)
QUEUED_RETRY_S = 30
USAGE_CACHE_S = 10.0

_usage_cache: dict[tuple[str, str, str], tuple[float, Any]] = {}
_usage_lock = threading.Lock()


def _cached(key: tuple[str, str, str], read: Callable[[], Any]) -> Any:
    now = time.monotonic()
    hit = _usage_cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    value = read()
    with _usage_lock:
        if len(_usage_cache) > 100_000:
            _usage_cache.clear()  # rare; the next submits read again
        _usage_cache[key] = (now + USAGE_CACHE_S, value)
    return value


def check_queued(*, settings_cap: int, queued: int) -> None:
    """Raise QuotaExceeded when ``queued`` (the tenant's queued jobs, counted up to the
    cap) has reached ``settings_cap`` (0: no cap)."""
    if settings_cap and queued >= settings_cap:
        raise QuotaExceeded(
            f"this tenant has {queued} queued jobs, the limit is {settings_cap}; "
            "submit more once some have started",
            retry_after=QUEUED_RETRY_S,
        )


def check_usage(*, session: Session, settings: Settings, tenant_id: str) -> None:
    """Raise QuotaExceeded when the tenant's GPU time or storage is used up."""
    if settings.gpu_seconds_per_day:
        _check_gpu_time(session, settings, tenant_id)
    if settings.max_storage_bytes:
        _check_storage(session, settings, tenant_id)


def may_start(*, session: Session, settings: Settings, tenant_id: str) -> bool:
    """Whether another job of this tenant may start running now."""
    if not settings.max_running_jobs:
        return True
    running = session.scalar(
        select(func.count())
        .select_from(Job)
        .where(Job.tenant_id == tenant_id, Job.status == JobStatus.running)
    )
    return (running or 0) < settings.max_running_jobs


def run_intervals(*, session: Session, tenant_id: str, now: datetime) -> list[tuple[float, float]]:
    """(start, end) in seconds before ``now`` of the tenant's runs that touch the last 24 h:
    ended jobs from start to end, running jobs from start to now."""
    return _intervals(_runs(session=session, tenant_id=tenant_id, now=now), now)


def _runs(*, session: Session, tenant_id: str, now: datetime) -> list[tuple[Any, ...]]:
    return [
        tuple(row)
        for row in session.execute(
            select(Job.status, Job.started_at, Job.completed_at).where(
                Job.tenant_id == tenant_id,
                Job.started_at.is_not(None),
                (Job.status == JobStatus.running) | (Job.completed_at > now - DAY),
            )
        )
    ]


def _intervals(rows: list[tuple[Any, ...]], now: datetime) -> list[tuple[float, float]]:
    intervals = []
    for status, started, completed in rows:
        if started is None:
            continue
        if status in TERMINAL and completed is not None:
            end = (now - as_utc(completed)).total_seconds()
        elif status == JobStatus.running:
            end = 0.0
        else:
            continue
        intervals.append(((now - as_utc(started)).total_seconds(), end))
    return intervals


def usage_in_window(intervals: list[tuple[float, float]], window_s: float) -> float:
    """Seconds of the intervals (ages before now) inside the last ``window_s`` seconds."""
    return sum(max(0.0, min(start, window_s) - max(end, 0.0)) for start, end in intervals)


def _check_gpu_time(session: Session, settings: Settings, tenant_id: str) -> None:
    limit = settings.gpu_seconds_per_day
    day = DAY.total_seconds()
    rows = _cached(
        ("runs", settings.database_url, tenant_id),
        lambda: _runs(session=session, tenant_id=tenant_id, now=utcnow()),
    )
    intervals = _intervals(rows, utcnow())
    used = usage_in_window(intervals, day)
    if used < limit:
        return
    # How long until runs age out of the 24 h window enough to fall under the limit
    # (bisection on the window's start; running jobs are counted as they stand now).
    low, high = 0.0, day
    for _ in range(20):
        mid = (low + high) / 2
        if usage_in_window(intervals, day - mid) < limit:
            high = mid
        else:
            low = mid
    raise QuotaExceeded(
        f"this tenant's jobs ran {used:,.0f} s in the last 24 h, the limit is {limit:,.0f} s",
        retry_after=max(1, int(high) + 1),
    )


def storage_used(*, session: Session, settings: Settings, tenant_id: str) -> int:
    def read() -> int:
        used = session.scalar(
            select(func.coalesce(func.sum(Artifact.size), 0))
            .join(Job, Job.id == Artifact.job_id)
            .where(Job.tenant_id == tenant_id)
        )
        return int(used or 0)

    return int(_cached(("storage", settings.database_url, tenant_id), read))


def _check_storage(session: Session, settings: Settings, tenant_id: str) -> None:
    used = storage_used(session=session, settings=settings, tenant_id=tenant_id)
    if used < settings.max_storage_bytes:
        return
    retry_after = 3600
    if settings.retention_days:
        oldest = session.scalar(
            select(func.min(Job.completed_at)).where(
                Job.tenant_id == tenant_id, Job.completed_at.is_not(None)
            )
        )
        if oldest is not None:
            expires = as_utc(oldest) + timedelta(days=settings.retention_days)
            retry_after = max(60, int((expires - utcnow()).total_seconds()))
    raise QuotaExceeded(
        f"this tenant's artifacts take {used:,} bytes, the limit is "
        f"{settings.max_storage_bytes:,}; they are freed as jobs expire",
        retry_after=retry_after,
    )
