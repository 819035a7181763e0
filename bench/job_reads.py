"""GET /v1/jobs/{id} and GET /v1/jobs (first pages, deep cursor pages, a rare status) with
``jobs`` rows in the table, and the plans Postgres picks for them (bench/submission.py).

The rows are written by one INSERT ... SELECT generate_series, half to the bench's tenant
and half to another, in the shapes the API writes: ~90 % succeeded with a result, the
rest failed, canceled, running and queued (1 %), three kinds, created over 30 days.
"""

from __future__ import annotations

import random
import tempfile
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Select, select, text
from sqlalchemy.orm import Session

from bench import wrk
from core.db import autocommit_engine, session_scope
from core.jobs import queries
from core.jobs.orm import Job
from core.jobs.states import JobStatus
from core.tenants import service as tenants

FILL = """
INSERT INTO jobs (id, tenant_id, kind, status, request, progress, result, error,
                  model_version_id, attempts, preemptions, created_at, started_at,
                  completed_at, heartbeat_at)
SELECT gen_random_uuid()::text,
       CASE WHEN g % 2 = 0 THEN :ours ELSE :other END,
       (ARRAY['train', 'generate', 'generate', 'evaluate'])[1 + (g / 2) % 4],
       CASE WHEN g % 100 < 1 THEN 'queued' WHEN g % 100 < 2 THEN 'running'
            WHEN g % 100 < 6 THEN 'failed' WHEN g % 100 < 9 THEN 'canceled'
            ELSE 'succeeded' END,
       CAST(:request AS jsonb),
       CAST('{"step": 100, "total": 100}' AS jsonb),
       CASE WHEN g % 100 >= 9 THEN CAST(:result AS jsonb) END,
       NULL, NULL, 1, 0,
       now() - make_interval(secs => g * 26.0),
       now() - make_interval(secs => g * 26.0 - 5),
       now() - make_interval(secs => g * 26.0 - 65),
       NULL
FROM generate_series(1, :n) AS g
"""
REQUEST = '{"kind": "train", "engine": "ddpm", "dataset": "digits", "model_name": "bench"}'
RESULT = '{"model_version": "bench:3", "steps": 100, "loss": 0.0312, "seconds": 61.2}'


def explain(session: Session, statement: Select[Any]) -> list[str]:
    """Postgres's plan for exactly the statement the API runs, with its parameters."""
    compiled = statement.compile(dialect=session.get_bind().dialect)
    conn = session.connection()
    rows = conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params).all()
    return [str(r[0]) for r in rows]


def fill(database_url: str, jobs: int) -> tuple[str, list[str], list[str]]:
    """Write ``jobs`` rows; returns the bench tenant's id, some of its job ids, cursors."""
    with session_scope(database_url) as session:
        ours = tenants.get_or_create_tenant(session=session, name="bench").id
        other = tenants.get_or_create_tenant(session=session, name="other").id
        session.execute(
            text(FILL),
            {"ours": ours, "other": other, "n": jobs, "request": REQUEST, "result": RESULT},
        )
    # VACUUM too, as autovacuum would soon after such an insert: its visibility map lets
    # the planner use index-only scans, and it does not start in the middle of a run.
    with autocommit_engine(database_url).connect() as conn:
        conn.exec_driver_sql("VACUUM ANALYZE jobs")
    with session_scope(database_url) as session:
        rows = session.scalars(
            select(Job).where(Job.tenant_id == ours).order_by(Job.created_at.desc())
        ).all()
    rng = random.Random(0)
    sample = rng.sample(list(rows), min(1000, len(rows)))
    ids = [j.id for j in sample]
    cursors = [queries.encode_cursor(j) for j in rng.sample(list(rows), min(300, len(rows)))]
    return ours, ids, cursors


def plans(database_url: str, tenant_id: str, job_id: str, cursor: str) -> dict[str, list[str]]:
    after = queries.decode_cursor(cursor)
    shapes = {
        "get": queries.get_query(tenant_id=tenant_id, job_id=job_id),
        "list": queries.list_query(tenant_id=tenant_id, limit=51),
        "list after a cursor": queries.list_query(tenant_id=tenant_id, after=after, limit=51),
        "list status=queued": queries.list_query(
            tenant_id=tenant_id, status=JobStatus.queued, limit=51
        ),
    }
    with session_scope(database_url) as session:
        return {name: explain(session, stmt) for name, stmt in shapes.items()}


def measure(
    database_url: str,
    url: str,
    headers: dict[str, str],
    *,
    jobs: int,
    seconds: float,
    connections: int,
) -> dict[str, Any]:
    tenant_id, ids, cursors = fill(database_url, jobs)
    with session_scope(database_url) as session:
        total = session.scalar(text("SELECT count(*) FROM jobs"))
    figures: dict[str, Any] = {
        "rows": total,
        "plans": plans(database_url, tenant_id, ids[0], cursors[0]),
    }
    tmp = Path(tempfile.mkdtemp(prefix="synthgen-bench-"))
    (tmp / "get").write_text("".join(f"/v1/jobs/{i}\n" for i in ids))
    (tmp / "deep").write_text("".join(f"/v1/jobs?limit=50&cursor={c}\n" for c in cursors))
    shapes = {
        "GET /v1/jobs/{id}": "@" + str(tmp / "get"),
        "GET /v1/jobs?limit=50": "/v1/jobs?limit=50",
        "GET /v1/jobs?limit=50&cursor=(random depth)": "@" + str(tmp / "deep"),
        "GET /v1/jobs?status=queued&limit=50": "/v1/jobs?status=queued&limit=50",
    }
    figures["runs"] = {}
    for name, path in shapes.items():
        wrk.run(url, path=path, headers=headers, connections=connections, seconds=2)  # warm
        result = wrk.run(
            url,
            path=path,
            headers=headers,
            connections=connections,
            seconds=seconds,
            run_id=uuid.uuid4().hex[:8],
        )
        if result["errors"]:
            raise RuntimeError(f"{name}: {result['errors']:.0f} requests failed")
        figures["runs"][name] = result
    return figures


def report(figures: dict[str, Any]) -> None:
    print(f"\nreads with {figures['rows']:,} jobs in the table (wrk, same connections)")
    print(f"{'request':<46} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in figures["runs"].items():
        print(f"{name:<46} {r['rps']:8.0f} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f}")
    for name, lines in figures["plans"].items():
        print(f"\nEXPLAIN {name}:")
        for line in lines:
            print(f"  {line}")
