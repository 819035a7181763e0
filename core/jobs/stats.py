"""What the job table says now, for the operators' gauges (api/metrics.py reads it at
scrape time: Postgres is the source of truth, so nothing is kept in memory).

Per queue: jobs waiting and the age of the oldest, the stalest heartbeat among running
jobs (what the reconciler acts on) and how far the running job furthest past its
``max_seconds`` budget is beyond it. Overall: jobs by status and kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.db import utcnow
from core.jobs.orm import Job
from core.jobs.states import JobKind, JobStatus
from core.queue import QUEUE_FOR_KIND, QUEUES


@dataclass
class QueueStats:
    length: int = 0
    oldest_age_s: float = 0.0
    heartbeat_age_s: float = 0.0
    budget_overrun_s: float = 0.0


@dataclass
class JobStats:
    by_status_kind: dict[tuple[str, str], int]
    queues: dict[str, QueueStats] = field(default_factory=lambda: {q: QueueStats() for q in QUEUES})


def snapshot(*, session: Session, now: datetime | None = None) -> JobStats:
    now = now or utcnow()
    counts = session.execute(
        select(Job.status, Job.kind, func.count()).group_by(Job.status, Job.kind)
    ).all()
    stats = JobStats(
        by_status_kind={(str(s), str(k)): 0 for s in JobStatus for k in JobKind}
        | {(str(s), str(k)): int(n) for s, k, n in counts}
    )
    queued = session.execute(
        select(Job.kind, func.count(), func.min(Job.created_at))
        .where(Job.status == JobStatus.queued)
        .group_by(Job.kind)
    ).all()
    for kind, n, oldest in queued:
        q = stats.queues[QUEUE_FOR_KIND[JobKind(kind)]]
        q.length += int(n)
        q.oldest_age_s = max(q.oldest_age_s, _age(now, oldest))
    # Running jobs are few (one per worker slot), so their budgets are read in Python
    # rather than through each database's own JSON operators.
    running = session.execute(
        select(Job.kind, Job.started_at, Job.heartbeat_at, Job.request).where(
            Job.status == JobStatus.running
        )
    ).all()
    for kind, started, beat, request in running:
        q = stats.queues[QUEUE_FOR_KIND[JobKind(kind)]]
        q.heartbeat_age_s = max(q.heartbeat_age_s, _age(now, beat or started))
        budget = (request.get("config") or {}).get("max_seconds")
        if budget is not None and started is not None:
            q.budget_overrun_s = max(q.budget_overrun_s, _age(now, started) - float(budget))
    return stats


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    # SQLite hands back naive datetimes; every timestamp we write is UTC.
    return max((now - (then if then.tzinfo else then.replace(tzinfo=UTC))).total_seconds(), 0.0)
