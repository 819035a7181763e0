"""The job reads the API runs are served by indexes, in order, on a table big enough that
Postgres would rather scan it otherwise: each statement is the one the API builds
(core/jobs/queries.py, core/jobs/submission.py), explained after ANALYZE, with the
planner's defaults (no enable_seqscan tricks)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from core.db import session_factory, session_scope, utcnow
from core.jobs import group_insert, queries
from core.jobs.states import JobStatus
from core.tenants import service as tenants
from tests.integration.conftest import migrated_database

pytestmark = pytest.mark.integration

ROWS = 20_000
# Two tenants; 1 % queued, 1 % running, the rest ended; created over ~6 days.
FILL = """
INSERT INTO jobs (id, tenant_id, kind, status, request, attempts, preemptions, created_at)
SELECT gen_random_uuid()::text,
       CASE WHEN g % 2 = 0 THEN :a ELSE :b END,
       (ARRAY['train', 'generate', 'evaluate'])[1 + (g / 2) % 3],
       CASE WHEN g % 100 < 1 THEN 'queued' WHEN g % 100 < 2 THEN 'running'
            WHEN g % 100 < 8 THEN 'failed' ELSE 'succeeded' END,
       CAST('{"kind": "train"}' AS jsonb), 1, 0,
       now() - make_interval(secs => g * 26.0)
FROM generate_series(1, :n) AS g
"""


@pytest.fixture(scope="module")
def filled() -> Iterator[tuple[str, str]]:
    """A database of its own with ROWS jobs; yields its URL and one tenant's id."""
    with migrated_database("synthgen_plans") as url:
        with session_scope(url) as session:
            a = tenants.get_or_create_tenant(session=session, name="a").id
            b = tenants.get_or_create_tenant(session=session, name="b").id
            session.execute(text(FILL), {"a": a, "b": b, "n": ROWS})
        with session_scope(url) as session:
            session.execute(text("ANALYZE jobs"))
        yield url, a
        session_factory(url).kw["bind"].dispose()


def _plan(session: Session, statement: Any) -> dict:
    """EXPLAIN of a SQLAlchemy statement, with its parameters, as Postgres runs it."""
    compiled = statement.compile(dialect=session.get_bind().dialect)
    raw = session.connection().exec_driver_sql(
        "EXPLAIN (FORMAT JSON) " + str(compiled), compiled.params
    )
    plan = raw.scalar_one()
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]


def _nodes(plan: dict) -> Iterator[dict]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _on_jobs(plan: dict) -> list[dict]:
    return [n for n in _nodes(plan) if n.get("Relation Name") == "jobs"]


def _served_by(plan: dict, index: str) -> dict:
    """The one node that reads jobs: an index scan of ``index``, never a Seq Scan, and
    no Sort anywhere (the index gives the order)."""
    (node,) = _on_jobs(plan)
    assert node["Node Type"] in ("Index Scan", "Index Only Scan"), json.dumps(plan, indent=1)
    assert node["Index Name"] == index, json.dumps(plan, indent=1)
    assert not any(n["Node Type"] == "Sort" for n in _nodes(plan)), json.dumps(plan, indent=1)
    return node


def _deep_cursor(session: Session, tenant_id: str) -> tuple[Any, str]:
    """(created_at, id) of a job a quarter of the way down the tenant's list."""
    row = session.execute(
        text(
            "SELECT created_at, id FROM jobs WHERE tenant_id = :t "
            "ORDER BY created_at DESC, id DESC OFFSET :o LIMIT 1"
        ),
        {"t": tenant_id, "o": ROWS // 8},
    ).one()
    return row[0], row[1]


def test_get_reads_one_row_by_primary_key(filled):
    url, tenant_id = filled
    with session_scope(url) as session:
        job_id = session.scalar(
            text("SELECT id FROM jobs WHERE tenant_id = :t LIMIT 1"), {"t": tenant_id}
        )
        _served_by(
            _plan(session, queries.get_query(tenant_id=tenant_id, job_id=job_id)), "jobs_pkey"
        )


def test_list_pages_walk_the_tenant_index_in_order(filled):
    url, tenant_id = filled
    with session_scope(url) as session:
        first = _plan(session, queries.list_query(tenant_id=tenant_id, limit=51))
        _served_by(first, "ix_jobs_tenant_created")
        after = _deep_cursor(session, tenant_id)
        deep = _plan(session, queries.list_query(tenant_id=tenant_id, after=after, limit=51))
        node = _served_by(deep, "ix_jobs_tenant_created")
        # The cursor bounds the index range itself: no rows read and thrown away.
        assert "created_at" in node["Index Cond"] and "Filter" not in node, node


def test_list_by_status_reads_only_that_status(filled):
    url, tenant_id = filled
    with session_scope(url) as session:
        plan = _plan(
            session, queries.list_query(tenant_id=tenant_id, status=JobStatus.queued, limit=51)
        )
        node = _served_by(plan, "ix_jobs_tenant_status_created")
        assert "status" in node["Index Cond"] and "Filter" not in node, node


def test_the_submit_statement_counts_only_queued_jobs(filled):
    """The queued-jobs quota in the submit statement reads queued rows from an index on
    status (which one is the planner's choice), never the tenant's whole history."""
    url, tenant_id = filled
    now = utcnow()
    row = group_insert.Row(
        id=str(uuid.uuid4()), tenant_id=tenant_id, kind="train", request={},
        model_version_id=None, created_at=now, key="k", fingerprint="f" * 64,
        expires_at=now, queue="gpu",
    )  # fmt: skip
    params = group_insert.params([row], max_queued=100, task_name="t")
    with session_scope(url) as session:
        raw = session.connection().exec_driver_sql(
            "EXPLAIN (FORMAT JSON) " + group_insert.SQL, params
        )
        plan = raw.scalar_one()
    plan = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    reads = [n for n in _on_jobs(plan) if n["Node Type"] != "ModifyTable"]
    assert reads, json.dumps(plan, indent=1)
    for node in reads:
        assert node["Node Type"] in ("Index Scan", "Index Only Scan"), json.dumps(plan, indent=1)
        assert "status" in node["Index Cond"], json.dumps(plan, indent=1)
