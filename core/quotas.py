"""Per-tenant limits, so one tenant cannot take the service for itself.

Checked at submit (QuotaExceeded → 429 with Retry-After):
- queued jobs: at most ``max_queued_jobs`` waiting;
- GPU time: run time of the tenant's jobs in the last 24 h under ``gpu_seconds_per_day``
  (jobs running now count up to now);
- storage: the artifacts of the tenant's kept jobs under ``max_storage_bytes``.

Checked when a worker claims a job: at most ``max_running_jobs`` of a tenant's jobs run
at once. A job over it is not refused, it waits in the queue (the reconciler sends its
message again) — a tenant with a burst of jobs gets them run, just not all at once.

A setting of 0 turns its limit off.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.artifacts.orm import Artifact
from core.config import Settings
from core.db import utcnow
from core.errors import QuotaExceeded
from core.jobs.orm import Job
from core.jobs.states import TERMINAL, JobStatus

DAY = timedelta(days=1)
QUEUED_RETRY_S = 30
# Summing a tenant's artifacts reads every artifact row of it; the figure is kept this
# long per process (a tenant can overshoot its storage by what it writes meanwhile).
STORAGE_CACHE_S = 30.0

_storage_cache: dict[tuple[str, str], tuple[float, int]] = {}
_storage_lock = threading.Lock()


def check_submit(*, session: Session, settings: Settings, tenant_id: str) -> None:
    """Raise QuotaExceeded when the tenant may not submit another job now."""
    if settings.max_queued_jobs:
        queued = session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.tenant_id == tenant_id, Job.status == JobStatus.queued)
        )
        if queued is not None and queued >= settings.max_queued_jobs:
            raise QuotaExceeded(
                f"this tenant has {queued} queued jobs, the limit is "
                f"{settings.max_queued_jobs}; submit more once some have started",
                retry_after=QUEUED_RETRY_S,
            )
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


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every timestamp we write is UTC.
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


def run_intervals(*, session: Session, tenant_id: str, now: datetime) -> list[tuple[float, float]]:
    """(start, end) in seconds before ``now`` of the tenant's runs that touch the last 24 h:
    ended jobs from start to end, running jobs from start to now."""
    rows = session.execute(
        select(Job.status, Job.started_at, Job.completed_at).where(
            Job.tenant_id == tenant_id,
            Job.started_at.is_not(None),
            (Job.status == JobStatus.running) | (Job.completed_at > now - DAY),
        )
    ).all()
    intervals = []
    for status, started, completed in rows:
        if started is None:
            continue
        if status in TERMINAL and completed is not None:
            end = (now - _aware(completed)).total_seconds()
        elif status == JobStatus.running:
            end = 0.0
        else:
            continue
        intervals.append(((now - _aware(started)).total_seconds(), end))
    return intervals


def usage_in_window(intervals: list[tuple[float, float]], window_s: float) -> float:
    """Seconds of the intervals (ages before now) inside the last ``window_s`` seconds."""
    return sum(max(0.0, min(start, window_s) - max(end, 0.0)) for start, end in intervals)


def _check_gpu_time(session: Session, settings: Settings, tenant_id: str) -> None:
    limit = settings.gpu_seconds_per_day
    day = DAY.total_seconds()
    intervals = run_intervals(session=session, tenant_id=tenant_id, now=utcnow())
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
    key = (settings.database_url, tenant_id)
    now = time.monotonic()
    cached = _storage_cache.get(key)
    if cached is not None and cached[0] > now:
        return cached[1]
    used = session.scalar(
        select(func.coalesce(func.sum(Artifact.size), 0))
        .join(Job, Job.id == Artifact.job_id)
        .where(Job.tenant_id == tenant_id)
    )
    with _storage_lock:
        _storage_cache[key] = (now + STORAGE_CACHE_S, int(used or 0))
    return int(used or 0)


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
            expires = _aware(oldest) + timedelta(days=settings.retention_days)
            retry_after = max(60, int((expires - utcnow()).total_seconds()))
    raise QuotaExceeded(
        f"this tenant's artifacts take {used:,} bytes, the limit is "
        f"{settings.max_storage_bytes:,}; they are freed as jobs expire",
        retry_after=retry_after,
    )
