"""The job-table gauges (core/jobs/stats.py) say what the rows say, at a given moment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from core.db import session_scope, utcnow
from core.jobs import stats
from core.jobs.orm import Job
from core.jobs.states import JobKind, JobStatus
from core.migrate import upgrade
from core.tenants.orm import Tenant

NOW = utcnow()


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path}/t.db"
    upgrade(url)
    with session_scope(url) as s:
        s.add(Tenant(id="t", name="t"))
    return url


def add(db: str, *, status: str, kind: str = "train", age_s: float = 0, **fields) -> None:
    request = {"kind": kind, "config": fields.pop("config", {})}
    with session_scope(db) as s:
        s.add(Job(tenant_id="t", kind=kind, status=status, request=request,
                  created_at=NOW - timedelta(seconds=age_s), **fields))  # fmt: skip


def test_counts_jobs_by_status_and_kind_with_zeros_for_the_rest(db):
    add(db, status="queued")
    add(db, status="queued", kind="generate")
    add(db, status="succeeded")
    with session_scope(db) as s:
        counts = stats.snapshot(session=s, now=NOW).by_status_kind
    assert counts[("queued", "train")] == 1
    assert counts[("queued", "generate")] == 1
    assert counts[("succeeded", "train")] == 1
    assert counts[("failed", "evaluate")] == 0
    assert len(counts) == len(JobStatus) * len(JobKind)  # every pair, zeros included


def test_queue_length_and_oldest_age_count_only_queued_jobs(db):
    add(db, status="queued", age_s=30)
    add(db, status="queued", kind="evaluate", age_s=90)
    add(db, status="succeeded", age_s=600)
    with session_scope(db) as s:
        queues = stats.snapshot(session=s, now=NOW).queues
    assert queues["gpu"].length == 2
    assert queues["gpu"].oldest_age_s == pytest.approx(90)
    assert queues["cpu"].length == 0 and queues["cpu"].oldest_age_s == 0


def test_running_jobs_give_the_stalest_heartbeat_and_the_worst_budget_overrun(db):
    started = NOW - timedelta(seconds=1000)
    add(db, status="running", started_at=started, heartbeat_at=NOW - timedelta(seconds=40),
        config={"max_seconds": 300})  # fmt: skip
    add(db, status="running", started_at=started, heartbeat_at=NOW - timedelta(seconds=5),
        config={"max_seconds": 900})  # fmt: skip
    add(db, status="running", started_at=NOW, heartbeat_at=NOW)  # no budget: never over
    with session_scope(db) as s:
        gpu = stats.snapshot(session=s, now=NOW).queues["gpu"]
    assert gpu.heartbeat_age_s == pytest.approx(40)
    assert gpu.budget_overrun_s == pytest.approx(700)


def test_running_jobs_within_their_budget_report_no_overrun(db):
    add(db, status="running", started_at=NOW - timedelta(seconds=10), heartbeat_at=NOW,
        config={"max_seconds": 300})  # fmt: skip
    with session_scope(db) as s:
        assert stats.snapshot(session=s, now=NOW).queues["gpu"].budget_overrun_s == 0
